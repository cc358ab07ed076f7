package tenmin.tools.resize;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

import tenmin.core.Reporter;
import tenmin.core.Tasks;

/**
 * The worker threads of one resize run, the order in which jobs start, and per-worker scratch arrays.
 *
 * <p>Memory-bound jobs (checkpoint norms, limited by memory bandwidth, which a second thread does not
 * raise) and compute-bound jobs (decompositions) run side by side: one worker prefers the first kind, the
 * others the second; see {@link #schedule} for the order within each kind.
 */
final class WorkPool implements AutoCloseable {
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
        private final double[][] wideSlots = new double[2][];

        /** The array of {@code slot}, at least {@code n} long (contents undefined). */
        float[] floats(int slot, int n) {
            float[] b = slots[slot];
            if (b == null || b.length < n) {
                b = new float[n];
                slots[slot] = b;
            }
            return b;
        }

        /** The double array of {@code slot} ({@link #DOWN} or {@link #UP}), at least {@code n} long (contents undefined). */
        double[] doubles(int slot, int n) {
            double[] b = wideSlots[slot];
            if (b == null || b.length < n) {
                b = new double[n];
                wideSlots[slot] = b;
            }
            return b;
        }
    }

    private final ExecutorService pool;
    private final BlockingQueue<Scratch> scratch;
    private final int threads;

    WorkPool(int threads) {
        this.threads = threads;
        this.pool = Tasks.daemonPool(threads, "resize-worker");
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

    /** Starts {@code work} on a worker; work submitted earlier starts earlier. */
    <T> Future<T> submit(Callable<T> work) {
        return pool.submit(work);
    }

    /**
     * Runs all jobs with a progress bar labelled {@code label}; rethrows the first failure. Worker 0 takes
     * memory-bound jobs first, the others compute-bound jobs first; each takes from the other queue when its
     * own is empty.
     */
    void run(String label, List<? extends Job<?>> jobs, Reporter reporter) throws IOException {
        if (jobs.isEmpty()) {
            return;
        }
        Deque<Job<?>> memory = new ConcurrentLinkedDeque<>();
        Deque<Job<?>> compute = new ConcurrentLinkedDeque<>();
        for (Job<?> j : schedule(jobs)) {
            (j.memoryBound ? memory : compute).add(j);
        }
        AtomicBoolean failed = new AtomicBoolean();
        try (Reporter.Progress progress = reporter.progress(label, jobs.size())) {
            List<Future<?>> workers = new ArrayList<>();
            for (int w = 0; w < threads; w++) {
                Deque<Job<?>> first = w == 0 ? memory : compute;
                Deque<Job<?>> second = w == 0 ? compute : memory;
                workers.add(pool.submit(() -> {
                    Job<?> j;
                    while (!failed.get() && (j = poll(first, second)) != null) {
                        try {
                            j.run();
                        } catch (Exception | Error e) {
                            failed.set(true);
                            throw e;
                        }
                        progress.advance(1);
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) {
                await(f, workers);
            }
        }
    }

    /** The next job of the worker's own queue, else the last (largest) job of the other. */
    private static Job<?> poll(Deque<Job<?>> own, Deque<Job<?>> other) {
        Job<?> j = own.pollFirst();
        return j != null ? j : other.pollLast();
    }

    private static void await(Future<?> f, List<Future<?>> all) throws IOException {
        try {
            f.get();
        } catch (ExecutionException e) {
            for (Future<?> other : all) {
                other.cancel(true);
            }
            Throwable c = Tasks.rethrowUnchecked(e);
            if (c instanceof IOException io) {
                throw io;
            }
            throw new IllegalStateException(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /**
     * The order within each queue. Compute-bound jobs: smallest first. The cheap jobs get the JIT compiler to
     * the vector kernels before the expensive ones need them (a kernel runs a hundred times slower until it is
     * compiled), and a worker that runs out of its own kind takes the largest job of the other queue, which
     * balances the end. Memory-bound jobs keep the order they were given (the norm jobs come in file order,
     * see {@link BaseNorms.PageRelease}).
     */
    static List<Job<?>> schedule(List<? extends Job<?>> jobs) {
        List<Job<?>> order = new ArrayList<>(jobs);
        order.sort(Comparator.comparingDouble((Job<?> j) -> j.memoryBound ? 0 : j.cost));
        return order;
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
