package tenmin.engine.api;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

/** What the backend wrappers ({@link Trace}, {@link OpStats}) share: Object's methods and the forwarded call. */
final class BackendProxies {
    private BackendProxies() {
    }

    /** True when {@code method} is one of Object's ({@code equals}, {@code hashCode}, {@code toString}). */
    static boolean isObjectMethod(Method method) {
        return method.getDeclaringClass() == Object.class;
    }

    /** Object's methods on a proxy: identity equality and hash, {@code label} as its string. */
    static Object objectMethod(Object proxy, Method method, Object[] args, String label) {
        return switch (method.getName()) {
            case "equals" -> proxy == args[0];
            case "hashCode" -> System.identityHashCode(proxy);
            default -> label;
        };
    }

    /** Calls {@code method} on {@code target}, rethrowing what it throws as it is. */
    static Object forward(Backend target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
