package tenmin.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneId;
import java.util.Map;

import tenmin.formats.StDType;
import tenmin.train.save.LoraFileWriter;
import tenmin.train.save.OutputNames;
import tenmin.train.save.TrainingMetadata;
import tenmin.train.save.TrainingState;
import tenmin.train.save.TrainingStateFile;

/**
 * Writes what a save consists of (trainer-spec §9): the LoRA file in the save precision with kohya's
 * metadata and {@code sshs_model_hash}, and the training state beside it ({@code <stem>.tenmin-state}),
 * both atomically; removes step saves that fall out of {@code --save_last_n_steps}; remembers the last
 * complete save (what a stopped or diverged run points the user to).
 */
final class Checkpoints {
    private final TrainConfig cfg;
    private final TrainingMetadata.Run run;
    private final StDType dtype;
    private final ZoneId zone;
    private Path lastLora;
    private Path lastState;
    private long lastSavedStep = -1;

    Checkpoints(TrainConfig cfg, TrainingMetadata.Run run, ZoneId zone) {
        this.cfg = cfg;
        this.run = run;
        this.dtype = LoraFileWriter.dtypeOf(cfg.save().precision());
        this.zone = zone;
    }

    /**
     * Saves the network as {@code fileName} in the output folder, with the state beside it.
     *
     * @param step          the global step (ss_steps)
     * @param metadataEpoch ss_epoch: the 0-based epoch for step saves, the epoch count for epoch and final saves
     * @param nowSeconds    unix time of the save (ss_training_finished_at)
     * @return the LoRA file
     */
    Path save(String fileName, TrainableNetwork net, long step, int metadataEpoch, double nowSeconds, TrainingState state)
            throws IOException {
        Path dir = cfg.paths().outputDir();
        Files.createDirectories(dir);
        Map<String, String> metadata = TrainingMetadata.forSave(cfg, run, nowSeconds, step, metadataEpoch, zone);
        Path lora = dir.resolve(fileName);
        LoraFileWriter.write(lora, net.stateDict(), dtype, metadata);
        Path statePath = dir.resolve(OutputNames.stateFor(fileName));
        TrainingStateFile.write(statePath, state);
        lastLora = lora;
        lastState = statePath;
        lastSavedStep = step;
        return lora;
    }

    /**
     * kohya's {@code get_remove_step_no}: after saving step {@code step}, the step save of
     * {@code step − last_n − 1} rounded down to the save cadence (and its state) is deleted.
     */
    void removeOutdated(long step) throws IOException {
        int lastN = cfg.save().lastNSteps();
        int every = cfg.save().everyNSteps();
        if (lastN <= 0 || every <= 0) {
            return;
        }
        long remove = step - lastN - 1;
        remove -= remove % every;
        if (remove <= 0) {
            return;
        }
        String name = OutputNames.step(cfg.paths().outputName(), remove);
        Files.deleteIfExists(cfg.paths().outputDir().resolve(name));
        Files.deleteIfExists(cfg.paths().outputDir().resolve(OutputNames.stateFor(name)));
    }

    /** The last LoRA written, or null. */
    Path lastLora() {
        return lastLora;
    }

    /** The state beside {@link #lastLora()}, or null. */
    Path lastState() {
        return lastState;
    }

    /** The global step of the last save (−1: none yet). */
    long lastSavedStep() {
        return lastSavedStep;
    }
}
