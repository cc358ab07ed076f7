package tenmin.train;

import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

import tenmin.core.Tasks;
import tenmin.train.data.EpochPlanner.MicroBatch;

/**
 * Draws the host inputs of the next micro-batch ({@link BatchInputs#draw}) on a worker thread while the device runs
 * the current one: the recipe's multires noise alone takes ~23 ms per micro-batch of 8 at 1024x1024 on one core,
 * and the latents come from {@code .npz} files, time in which the device would otherwise wait. Each micro-batch
 * has its own generator ({@code drawRng(epoch, index)}), so a prefetched draw is the same as a direct one.
 *
 * <p>Only with cached latents: without a cache a draw runs the VAE on the device, which belongs to the loop's
 * thread; then every draw is direct. Not thread-safe: the loop's thread calls {@link #take}.
 */
final class InputPrefetch implements AutoCloseable {
    private final TrainSetup run;
    private final ExecutorService worker;
    private Future<BatchInputs> next;
    private int nextEpoch = -1;
    private int nextIndex = -1;

    InputPrefetch(TrainSetup run) {
        this.run = run;
        this.worker = run.cache().mode() == LatentCache.Mode.NONE ? null : Tasks.daemonPool(1, "tenmin-batch-inputs");
    }

    /**
     * The inputs of micro-batch {@code index} of {@code epoch} (of {@code batches}, that epoch's plan), prefetched
     * when they were asked for last; starts drawing the epoch's next micro-batch.
     */
    BatchInputs take(int epoch, int index, List<MicroBatch> batches) {
        BatchInputs in;
        if (next != null && nextEpoch == epoch && nextIndex == index) {
            in = Tasks.await(next, "drawing the inputs of micro-batch " + (index + 1));
        } else {
            if (next != null) {
                next.cancel(true);
            }
            in = draw(epoch, index, batches.get(index));
        }
        next = null;
        if (worker != null && index + 1 < batches.size()) {
            MicroBatch mb = batches.get(index + 1);
            nextEpoch = epoch;
            nextIndex = index + 1;
            next = worker.submit(() -> draw(epoch, index + 1, mb));
        }
        return in;
    }

    private BatchInputs draw(int epoch, int index, MicroBatch mb) {
        return BatchInputs.draw(run.config(), run.data(), run.cache(), run.textCache(), run.alphaMasks(), run.ddpm(),
                epoch, index, mb, run.data().planner().drawRng(epoch, index));
    }

    @Override
    public void close() {
        if (next != null) {
            next.cancel(true);
        }
        if (worker != null) {
            worker.shutdownNow();
        }
    }
}
