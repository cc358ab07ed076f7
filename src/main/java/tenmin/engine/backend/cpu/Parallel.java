package tenmin.engine.backend.cpu;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;

/**
 * A fixed pool of worker threads and a parallel-for over index ranges.
 *
 * <p>A range {@code [0, n)} is cut into at most {@link #threads()} contiguous pieces whose bounds
 * depend only on {@code n}, the grain and the thread count, so results never depend on scheduling.
 * The calling thread runs the first piece itself. A loop started inside a piece runs serially.
 */
final class Parallel implements AutoCloseable {
    /** The body of a parallel loop: handles indices {@code [from, to)}. */
    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    /** Per-thread scratch arrays that kernels reuse between calls (packing buffers, tiles). */
    static final class Workspace {
        private final float[][] slots = new float[8][];

        /** Scratch array number {@code slot} with at least {@code size} elements (contents undefined). */
        float[] floats(int slot, int size) {
            float[] a = slots[slot];
            if (a == null || a.length < size) {
                a = new float[size];
                slots[slot] = a;
            }
            return a;
        }
    }

    private final int threads;
    private final ThreadLocal<Workspace> workspaces = ThreadLocal.withInitial(Workspace::new);
    private final ExecutorService pool;
    /** True on a thread that is running a piece of a loop (nested loops then run serially). */
    private final ThreadLocal<Boolean> inLoop = ThreadLocal.withInitial(() -> Boolean.FALSE);

    Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        ThreadFactory factory = r -> {
            Thread t = new Thread(() -> {
                inLoop.set(Boolean.TRUE);
                r.run();
            }, "tenmin-cpu");
            t.setDaemon(true);
            return t;
        };
        this.pool = threads > 1 ? Executors.newFixedThreadPool(threads - 1, factory) : null;
    }

    /** The calling thread's scratch arrays. */
    Workspace workspace() {
        return workspaces.get();
    }

    int threads() {
        return threads;
    }

    /**
     * Runs {@code body} over {@code [0, n)} in up to {@code threads} pieces of at least {@code grain}
     * indices each.
     */
    void forRange(int n, int grain, Range body) {
        int pieces = pieces(n, grain);
        if (pieces <= 1) {
            if (n > 0) {
                body.run(0, n);
            }
            return;
        }
        List<Future<?>> futures = new ArrayList<>(pieces - 1);
        for (int p = 1; p < pieces; p++) {
            int from = bound(n, pieces, p);
            int to = bound(n, pieces, p + 1);
            futures.add(pool.submit(() -> body.run(from, to)));
        }
        Throwable failure = null;
        inLoop.set(Boolean.TRUE);
        try {
            body.run(0, bound(n, pieces, 1));
        } catch (RuntimeException | Error e) {
            failure = e;
        } finally {
            inLoop.set(Boolean.FALSE);
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                failure = failure == null ? e.getCause() : failure;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure = failure == null ? e : failure;
            }
        }
        if (failure instanceof RuntimeException r) {
            throw r;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        if (failure != null) {
            throw new IllegalStateException("parallel loop failed", failure);
        }
    }

    /** How many pieces {@link #forRange} uses for {@code n} indices. */
    int pieces(int n, int grain) {
        if (pool == null || inLoop.get()) {
            return 1;
        }
        long byGrain = Math.max(1, (long) n / Math.max(1, grain));
        return (int) Math.min(threads, byGrain);
    }

    private static int bound(int n, int pieces, int p) {
        return (int) ((long) n * p / pieces);
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
