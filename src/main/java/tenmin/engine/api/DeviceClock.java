package tenmin.engine.api;

import java.util.Arrays;

/**
 * Points in a backend's stream of work, for timing ops where they run ({@link OpTimes}): {@link #mark()} after an
 * op records a point that the device passes when everything issued before it has run; after {@link
 * Backend#synchronize()}, {@link #intervalsMillis()} gives the time from each mark to the next. A GPU backend
 * records events in its queue (the host goes on issuing); where ops run on the calling thread (the cpu backend,
 * libtorch on the CPU) a mark reads the wall clock ({@link #wall()}).
 *
 * <p>Not thread-safe: one thread marks.
 */
public interface DeviceClock extends AutoCloseable {
    /** Records a point after everything issued so far. */
    void mark();

    /** How many marks since the last {@link #reset()}. */
    int marks();

    /** Milliseconds from mark i to mark i + 1 ({@link #marks()} − 1 values); waits for the last mark. */
    double[] intervalsMillis();

    /** Forgets the marks. */
    void reset();

    /** Frees what the marks hold (events on a GPU). */
    @Override
    void close();

    /** The wall clock: for backends whose ops return when they are done. */
    static DeviceClock wall() {
        return new DeviceClock() {
            private long[] at = new long[1024];
            private int n;

            @Override
            public void mark() {
                if (n == at.length) {
                    at = Arrays.copyOf(at, 2 * n);
                }
                at[n++] = System.nanoTime();
            }

            @Override
            public int marks() {
                return n;
            }

            @Override
            public double[] intervalsMillis() {
                double[] out = new double[Math.max(0, n - 1)];
                for (int i = 0; i < out.length; i++) {
                    out[i] = (at[i + 1] - at[i]) / 1e6;
                }
                return out;
            }

            @Override
            public void reset() {
                n = 0;
            }

            @Override
            public void close() {
            }
        };
    }
}
