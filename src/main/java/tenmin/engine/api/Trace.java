package tenmin.engine.api;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import tenmin.core.InputException;
import tenmin.core.Reporter;

/**
 * The op trace: the first tool when numbers or memory look wrong.
 *
 * <p>Level 1 prints every backend op with the backend, argument shapes and dtypes, result shapes and
 * the time (after {@link Backend#synchronize()}, so device time is included); level 2 also prints
 * every tensor allocation and release with its scope, and records where each tensor was closed so a
 * use-after-close error points there. Lines go to the {@link Reporter} given here at INFO level,
 * never to {@code System.out}.
 *
 * <p>Switched on by the environment variable {@code TENMIN_TRACE} (1 or 2) through
 * {@link #fromEnvironment}; {@link #wrap} puts the tracer around a backend.
 */
public final class Trace {
    /** The environment variable holding the level. */
    public static final String ENV = "TENMIN_TRACE";

    /** No tracing. */
    public static final Trace OFF = new Trace(0, Reporter.SILENT);

    private final int level;
    private final Reporter reporter;

    private Trace(int level, Reporter reporter) {
        this.level = level;
        this.reporter = reporter;
    }

    /** A tracer at {@code level} (0 off, 1 ops, 2 ops and memory) writing to {@code reporter}. */
    public static Trace of(int level, Reporter reporter) {
        if (level < 0 || level > 2) {
            throw new IllegalArgumentException("trace level " + level + " (expected 0, 1 or 2)");
        }
        return level == 0 ? OFF : new Trace(level, reporter);
    }

    /** The tracer selected by {@code TENMIN_TRACE} (unset, empty or 0: off). */
    public static Trace fromEnvironment(Reporter reporter) {
        return parse(System.getenv(ENV), reporter);
    }

    /**
     * The tracer for a {@code TENMIN_TRACE} value; anything but empty, 0, 1 or 2 is an {@link InputException}
     * naming the variable.
     */
    public static Trace parse(String value, Reporter reporter) {
        if (value == null || value.isBlank() || value.trim().equals("0")) {
            return OFF;
        }
        return switch (value.trim()) {
            case "1" -> of(1, reporter);
            case "2" -> of(2, reporter);
            default -> throw new InputException("environment variable " + ENV + "=" + value + ": expected 0, 1 or 2");
        };
    }

    public int level() {
        return level;
    }

    /** True at level 2, where closing a tensor records the stack for later use-after-close errors. */
    boolean recordsClosers() {
        return level >= 2;
    }

    /**
     * {@code backend} itself when off, otherwise a backend that traces each op call and reports this
     * tracer from {@link Backend#trace()} (so scopes made from it trace allocations at level 2).
     */
    public Backend wrap(Backend backend) {
        if (level == 0) {
            return backend;
        }
        return BackendProxies.proxy("traced " + backend, (method, args) -> {
            if (method.getName().equals("trace") && method.getParameterCount() == 0) {
                return this;
            }
            boolean isOp = BackendProxies.isOp(args);
            long start = System.nanoTime();
            Object result = BackendProxies.forward(backend, method, args);
            if (isOp) {
                backend.synchronize();
                double millis = (System.nanoTime() - start) / 1e6;
                reporter.log(Reporter.Level.INFO, String.format(Locale.ROOT, "trace %s %s(%s) -> %s %.3f ms",
                        backend.name(), method.getName(), formatArgs(args), format(result), millis));
            }
            return result;
        });
    }

    void allocated(Tensor t, Scope scope) {
        if (level >= 2) {
            reporter.log(Reporter.Level.INFO, "trace alloc " + t.describe() + " in " + scope.path());
        }
    }

    void released(Tensor t) {
        if (level >= 2) {
            reporter.log(Reporter.Level.INFO, "trace free  " + t.describe() + " from " + t.scope().path());
        }
    }

    /** Elements of a list argument written out in a trace line. */
    private static final int LIST_SHOWN = 4;

    private static String formatArgs(Object[] args) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < args.length; i++) {
            if (args[i] instanceof Scope) {
                continue;
            }
            if (b.length() > 0) {
                b.append(", ");
            }
            b.append(format(args[i]));
        }
        return b.toString();
    }

    private static String format(Object o) {
        if (o == null) {
            return "null";
        }
        if (o instanceof Tensor t) {
            return t.describe();
        }
        if (o instanceof int[] a) {
            return Arrays.toString(a);
        }
        if (o instanceof float[] a) {
            return "float[" + a.length + "]";
        }
        if (o instanceof long[] a) {
            return "long[" + a.length + "]";
        }
        if (o instanceof List<?> list) {
            StringBuilder b = new StringBuilder("[");
            for (Object e : list.subList(0, Math.min(list.size(), LIST_SHOWN))) {
                if (b.length() > 1) {
                    b.append(", ");
                }
                b.append(format(e));
            }
            if (list.size() > LIST_SHOWN) {
                b.append(", ... ").append(list.size() - LIST_SHOWN).append(" more");   // a backward's 2,104 gradients
            }
            return b.append(']').toString();
        }
        if (o instanceof Record r) {
            return r.toString();
        }
        return String.valueOf(o);
    }
}
