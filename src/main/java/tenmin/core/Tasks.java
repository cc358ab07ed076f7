package tenmin.core;

import java.util.concurrent.ExecutionException;

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
}
