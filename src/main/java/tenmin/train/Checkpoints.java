package tenmin.train;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneId;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

import tenmin.core.Tasks;
import tenmin.formats.StDType;
import tenmin.train.save.LoraFileWriter;
import tenmin.train.save.OutputNames;
import tenmin.train.save.TrainingMetadata;
import tenmin.train.save.TrainingState;
import tenmin.train.save.TrainingStateFile;

/**
 * Writes what a save consists of (trainer-spec §9): the LoRA file in the save precision with kohya's
 * metadata and {@code sshs_model_hash}, and, when asked, the training state beside it
 * ({@code <stem>.tenmin-state}), both atomically; removes step saves that fall out of
 * {@code --save_last_n_steps}; remembers the last save and the last state (what a stopped or diverged run
 * points the user to).
 *
 * <p>A state holds the fp32 weights and the optimizer moments: about 1.4 GB for the recipe's LoCon, six
 * times its fp16 LoRA file. Written beside every save of the guide's {@code --save_every_n_steps=1} it
 * would add 115 GB of writes to an 80-step run, so the trainer writes it with the final save, on a stop
 * and on divergence, and beside every save only with {@code --save_state} (kohya's flag for the same).
 *
 * <p>LoRA files are written by a background thread, one at a time: a save copies the weights (they change at
 * the next optimizer step; into buffers kept for it; after a device step the copy is made on the device and the
 * writer thread downloads it, so the loop's thread does not wait for the device) and hands the file to that
 * thread, so the download, the hash, the conversion to the save
 * precision, the write and its fsync (about a second for the recipe's 234 MB) overlap the next micro-batches
 * instead of stopping the GPU; the guide saves after every one of its 80 steps. A save waits for the one
 * before it; {@link #flush} (every ending of a run) waits for the last, and a write that failed is reported
 * there or at the next save. Training states are written in the calling thread.
 */
final class Checkpoints implements AutoCloseable {
    private final TrainConfig cfg;
    private final TrainingMetadata.Run run;
    private final StDType dtype;
    private final ZoneId zone;
    private Path lastLora;
    private Path lastState;
    private long lastSavedStep = -1;
    private long lastStateStep = -1;
    private final ExecutorService writer = Tasks.daemonPool(1, "tenmin-save");
    private Future<?> pending;
    /** The weights handed to the writer thread, reused by every save once the one before is written. */
    private final Map<String, float[]> snapshotBuffers = new HashMap<>();
    /**
     * Tests only: the writer thread waits this long before each LoRA file (before it downloads the values a device
     * step left on the device), so saves overlap the next steps.
     */
    static volatile long writeDelayMillisForTests;
    private long writerWaitNanos;
    private long stateNanos;

    Checkpoints(TrainConfig cfg, TrainingMetadata.Run run, ZoneId zone) {
        this.cfg = cfg;
        this.run = run;
        this.dtype = LoraFileWriter.dtypeOf(cfg.save().precision());
        this.zone = zone;
    }

    /**
     * Saves the network as {@code fileName} in the output folder, with {@code state} beside it unless it is null.
     *
     * @param step          the global step (ss_steps)
     * @param metadataEpoch ss_epoch: the 0-based epoch for step saves, the epoch count for epoch and final saves
     * @param nowSeconds    unix time of the save (ss_training_finished_at)
     * @param state         the resume state to write beside it, or null for none
     * @return the LoRA file
     */
    Path save(String fileName, TrainableNetwork net, long step, int metadataEpoch, double nowSeconds, TrainingState state)
            throws IOException {
        Path dir = cfg.paths().outputDir();
        Files.createDirectories(dir);
        flush();
        Map<String, String> metadata = TrainingMetadata.forSave(cfg, run, nowSeconds, step, metadataEpoch, zone);
        Path lora = dir.resolve(fileName);
        TrainableNetwork.Snapshot snapshot = net.snapshot(snapshotBuffers); // the writer is done with the last (flush)
        pending = writer.submit(() -> {
            try {
                try {
                    if (writeDelayMillisForTests > 0) {
                        Thread.sleep(writeDelayMillisForTests);
                    }
                } finally {
                    snapshot.ready().run();                 // the values (and what held them on the device, freed)
                }
                LoraFileWriter.write(lora, snapshot.tensors(), dtype, metadata);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new UncheckedIOException(new InterruptedIOException("interrupted before writing " + lora));
            }
        });
        lastLora = lora;
        lastSavedStep = step;
        if (state != null) {
            writeState(fileName, state);
        }
        return lora;
    }

    /** Time the caller's thread waited in {@link #flush} for the writer thread, and spent writing resume states. */
    long writerWaitNanos() {
        return writerWaitNanos;
    }

    long stateNanos() {
        return stateNanos;
    }

    /** Waits until the LoRA file handed to the writer thread is on disk; rethrows its failure. */
    void flush() throws IOException {
        Future<?> f = pending;
        if (f == null) {
            return;
        }
        pending = null;
        long t0 = System.nanoTime();
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while the LoRA file " + lastLora + " was being written");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UncheckedIOException u) {
                throw u.getCause();
            }
            throw new IOException(Tasks.rethrowUnchecked(e));
        } finally {
            writerWaitNanos += System.nanoTime() - t0;
        }
    }

    /** {@link #flush}, then stops the writer thread. */
    @Override
    public void close() throws IOException {
        try {
            flush();
        } finally {
            writer.shutdown();
        }
    }

    /** Writes {@code state} beside the save {@code fileName} (written or being written) and returns its path. */
    Path writeState(String fileName, TrainingState state) throws IOException {
        Path statePath = cfg.paths().outputDir().resolve(OutputNames.stateFor(fileName));
        long t0 = System.nanoTime();
        try {
            TrainingStateFile.write(statePath, state);
        } finally {
            stateNanos += System.nanoTime() - t0;
        }
        lastState = statePath;
        lastStateStep = state.globalStep();
        return statePath;
    }

    /**
     * kohya's {@code get_remove_step_no}: after saving step {@code step}, the step save of
     * {@code step − last_n − 1} rounded down to the save cadence is deleted ({@code --save_last_n_steps}), and the
     * state of the step that {@code --save_last_n_steps_state} (default: the same N) names the same way.
     */
    void removeOutdated(long step) throws IOException {
        int every = cfg.save().everyNSteps();
        if (every <= 0) {
            return;
        }
        int lastN = cfg.save().lastNSteps();
        int lastNState = cfg.save().lastNStepsState() > 0 ? cfg.save().lastNStepsState() : lastN;
        long model = outdatedStep(step, lastN, every);
        if (model > 0) {
            delete(OutputNames.step(cfg.paths().outputName(), model));
        }
        long state = outdatedStep(step, lastNState, every);
        if (state > 0) {
            delete(OutputNames.stateFor(OutputNames.step(cfg.paths().outputName(), state)));
        }
    }

    /** {@code step − lastN − 1} rounded down to a multiple of {@code every}; 0 when nothing is to go. */
    private static long outdatedStep(long step, int lastN, int every) {
        if (lastN <= 0) {
            return 0;
        }
        long remove = step - lastN - 1;
        remove -= remove % every;
        return Math.max(0, remove);
    }

    /**
     * kohya's {@code get_remove_epoch_no}: after saving epoch {@code epoch}, the epoch save of
     * {@code epoch − every · last_n} is deleted when {@code --save_last_n_epochs} is set, and the state of the epoch
     * {@code --save_last_n_epochs_state} (default: the same N) names.
     */
    void removeOutdatedEpoch(int epoch, int every) throws IOException {
        int lastN = cfg.save().lastNEpochs();
        int lastNState = cfg.save().lastNEpochsState() > 0 ? cfg.save().lastNEpochsState() : lastN;
        if (lastN > 0 && epoch - (long) every * lastN > 0) {
            delete(OutputNames.epoch(cfg.paths().outputName(), (int) (epoch - (long) every * lastN)));
        }
        if (lastNState > 0 && epoch - (long) every * lastNState > 0) {
            delete(OutputNames.stateFor(OutputNames.epoch(cfg.paths().outputName(),
                    (int) (epoch - (long) every * lastNState))));
        }
    }

    /** Deletes the output file {@code name}, where it exists. */
    private void delete(String name) throws IOException {
        Files.deleteIfExists(cfg.paths().outputDir().resolve(name));
    }

    /** The last LoRA written, or null. */
    Path lastLora() {
        return lastLora;
    }

    /** The last state written (beside {@link #lastLora()} or an earlier save), or null. */
    Path lastState() {
        return lastState;
    }

    /** The global step of the last state written (−1: none yet). */
    long lastStateStep() {
        return lastStateStep;
    }

    /** The global step of the last save (−1: none yet). */
    long lastSavedStep() {
        return lastSavedStep;
    }
}
