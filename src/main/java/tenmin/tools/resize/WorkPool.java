package tenmin.tools.resize;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import tenmin.core.Reporter;

/**
 * The worker threads of one resize run, the order in which jobs start, and per-worker scratch arrays.
 *
 * <p>Order within a phase: the cheap jobs first (they get the JIT compiler to the vector kernels before
 * the expensive jobs need them), then the rest largest first, memory-bound jobs (checkpoint norms, limited
 * by memory bandwidth) and compute-bound jobs (decompositions) interleaved by cumulative cost so that both
 * kinds run side by side.
 */
final class WorkPool implements AutoCloseable {
    /** Jobs cheaper than this fraction of a phase's total run first. */
    private static final double WARM_FRACTION = 1e-4;

    /** A unit of work with an estimated cost; {@link #result} is set when it has run. */
    static final class Job<T> {
        final double cost;
        final boolean memoryBound;
        final Callable<T> work;
        T result;

        Job(double cost, boolean memoryBound, Callable<T> work) {
            this.cost = cost;
            this.memoryBound = memoryBound;
            this.work = work;
        }

        Job(double cost, Callable<T> work) {
            this(cost, false, work);
        }

        void run() throws Exception {
            result = work.call();
        }
    }

    /**
     * Work arrays of one worker, reused from job to job so that the multi-megabyte temporaries of the large
     * conv modules do not pile up as garbage (the heap, and the resident memory, would grow by hundreds of MB
     * before a collection).
     */
    static final class Scratch {
        static final int DOWN = 0;
        static final int UP = 1;
        static final int OUT = 2;
        private final float[][] slots = new float[3][];

        /** The array of {@code slot}, at least {@code n} long (contents undefined). */
        float[] floats(int slot, int n) {
            float[] b = slots[slot];
            if (b == null || b.length < n) {
                b = new float[n];
                slots[slot] = b;
            }
            return b;
        }
    }

    private final ExecutorService pool;
    private final BlockingQueue<Scratch> scratch;

    WorkPool(int threads) {
        this.pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "resize-worker");
            t.setDaemon(true);
            return t;
        });
        this.scratch = new ArrayBlockingQueue<>(threads);
        for (int i = 0; i < threads; i++) {
            scratch.add(new Scratch());
        }
    }

    /** Runs {@code work} with a scratch set of its own (there is one per worker thread). */
    <T> T withScratch(Function<Scratch, T> work) throws InterruptedException {
        Scratch s = scratch.take();
        try {
            return work.apply(s);
        } finally {
            scratch.add(s);
        }
    }

    /** Runs all jobs with a progress bar labelled {@code label}; rethrows the first failure. */
    void run(String label, List<? extends Job<?>> jobs, Reporter reporter) throws IOException {
        if (jobs.isEmpty()) {
            return;
        }
        List<Job<?>> order = schedule(jobs);
        try (Reporter.Progress progress = reporter.progress(label, order.size())) {
            List<Future<?>> futures = new ArrayList<>();
            for (Job<?> j : order) {
                futures.add(pool.submit(() -> {
                    j.run();
                    progress.advance(1);
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                await(f, futures);
            }
        }
    }

    private static void await(Future<?> f, List<Future<?>> all) throws IOException {
        try {
            f.get();
        } catch (ExecutionException e) {
            for (Future<?> other : all) {
                other.cancel(true);
            }
            Throwable c = e.getCause();
            if (c instanceof IOException io) {
                throw io;
            }
            if (c instanceof RuntimeException re) {
                throw re;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** The start order (see the class comment). */
    static List<Job<?>> schedule(List<? extends Job<?>> jobs) {
        List<Job<?>> warm = new ArrayList<>();
        List<Job<?>> memory = new ArrayList<>();
        List<Job<?>> compute = new ArrayList<>();
        double total = 0;
        for (Job<?> j : jobs) {
            total += j.cost;
        }
        for (Job<?> j : jobs) {
            if (j.memoryBound) {
                memory.add(j);
            } else if (j.cost < WARM_FRACTION * total) {
                warm.add(j);
            } else {
                compute.add(j);
            }
        }
        Comparator<Job<?>> largestFirst = Comparator.comparingDouble((Job<?> j) -> j.cost).reversed();
        memory.sort(largestFirst);
        compute.sort(largestFirst);
        List<Job<?>> order = new ArrayList<>(warm);
        double memTotal = Math.max(Double.MIN_NORMAL, memory.stream().mapToDouble(j -> j.cost).sum());
        double cmpTotal = Math.max(Double.MIN_NORMAL, compute.stream().mapToDouble(j -> j.cost).sum());
        double memDone = 0;
        double cmpDone = 0;
        int mi = 0;
        int ci = 0;
        while (mi < memory.size() || ci < compute.size()) {
            boolean takeMemory = ci >= compute.size()
                    || (mi < memory.size() && memDone / memTotal <= cmpDone / cmpTotal);
            Job<?> j = takeMemory ? memory.get(mi++) : compute.get(ci++);
            if (takeMemory) {
                memDone += j.cost;
            } else {
                cmpDone += j.cost;
            }
            order.add(j);
        }
        return order;
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
