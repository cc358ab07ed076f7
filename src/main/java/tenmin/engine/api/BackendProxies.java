package tenmin.engine.api;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.List;

/**
 * What the backend wrappers ({@link Trace}, {@link OpStats}, {@link OpTimes}) share: the proxy, Object's methods, the
 * forwarded call and what counts as an op.
 */
final class BackendProxies {
    private BackendProxies() {
    }

    /** What a wrapper does with a call that is not one of Object's methods. */
    @FunctionalInterface
    interface Call {
        Object invoke(Method method, Object[] args) throws Throwable;
    }

    /** A {@link Backend} whose Object methods answer as {@code label} (identity equality) and whose calls go to {@code call}. */
    static Backend proxy(String label, Call call) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> isObjectMethod(method) ? objectMethod(proxy, method, args, label)
                        : call.invoke(method, args));
    }

    /**
     * An op call: a scope, a tensor or a list of tensors first (every op, view, in-place update and bulk transfer; not
     * queries of the backend).
     */
    static boolean isOp(Object[] args) {
        return args != null && args.length > 0 && (args[0] instanceof Scope || args[0] instanceof Tensor
                || (args[0] instanceof List<?> l && !l.isEmpty() && l.getFirst() instanceof Tensor));
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
