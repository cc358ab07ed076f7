package tenmin.testing;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;

import tenmin.engine.api.Backend;

/**
 * A backend that forwards every call to another and appends its name to a list first ({@code profilerRegion} as
 * "region true" / "region false"): tests check which ops ran inside a marked region.
 */
public final class RecordingBackend {
    private RecordingBackend() {
    }

    /** {@code target} behind a recorder writing to {@code calls} (synchronise it if several threads issue ops). */
    public static Backend wrap(Backend target, List<String> calls) {
        return (Backend) Proxy.newProxyInstance(RecordingBackend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    if (method.getDeclaringClass() == Object.class) {
                        return switch (method.getName()) {
                            case "equals" -> proxy == args[0];
                            case "hashCode" -> System.identityHashCode(proxy);
                            default -> "recording " + target;
                        };
                    }
                    calls.add(method.getName().equals("profilerRegion") ? "region " + args[0] : method.getName());
                    try {
                        return method.invoke(target, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** How many of {@code calls} in [from, to) start with {@code prefix}. */
    public static long count(List<String> calls, int from, int to, String prefix) {
        return calls.subList(from, to).stream().filter(c -> c.startsWith(prefix)).count();
    }
}
