package tenmin.core;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** Helpers for work handed to other threads. */
public final class Tasks {
    private Tasks() {
    }

    /**
     * The cause of a failed task: rethrown as it was when unchecked (an {@link InputException} keeps its one-line
     * message), returned when checked, for the caller to report in its own terms.
     */
    public static Throwable rethrowUnchecked(ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof RuntimeException r) {
            throw r;
        }
        if (c instanceof Error err) {
            throw err;
        }
        return c;
    }

    /**
     * The result of {@code f}, waiting for it: a failure is rethrown as it was when unchecked (see
     * {@link #rethrowUnchecked}), else wrapped; an interrupt restores the flag and throws, saying what was awaited.
     */
    public static <T> T await(Future<T> f, String what) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            throw new IllegalStateException(rethrowUnchecked(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while " + what, e);
        }
    }

    /** A fixed pool of {@code threads} daemon threads named {@code name} (the JVM's exit never waits for them). */
    public static ExecutorService daemonPool(int threads, String name) {
        return Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }
}
