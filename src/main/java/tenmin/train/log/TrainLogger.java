package tenmin.train.log;

import java.io.IOException;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.function.DoubleSupplier;

import tenmin.formats.TensorBoardWriter;
import tenmin.train.TrainConfig;

/**
 * TensorBoard logging of a training run (trainer-spec §10): the run folder
 * {@code <logging_dir>/<log_prefix><YYYYmmddHHMMSS>/<tracker>/} and the reference's tags, logged every
 * micro-batch with {@code step = global step}:
 * <ul>
 * <li>{@code loss/current} — this micro-batch's loss; {@code loss/average} — {@link LossRecorder};
 * <li>{@code lr/unet} and {@code lr/textencoder} — each group's lr after the scheduler step. The reference,
 *     with LyCORIS' unnamed param groups, logs only {@code lr/unet} (an indexing quirk overwrites the
 *     text-encoder value with the U-Net one); tenmin logs both tags by default, and the reference's single
 *     tag with {@code --reference_lr_tags};
 * <li>{@code loss/epoch} once per epoch at step epoch+1.
 * </ul>
 */
public final class TrainLogger implements AutoCloseable {
    /** Tag names. */
    public static final String LOSS_CURRENT = "loss/current";
    public static final String LOSS_AVERAGE = "loss/average";
    public static final String LOSS_EPOCH = "loss/epoch";
    public static final String LR_UNET = "lr/unet";
    public static final String LR_TEXT_ENCODER = "lr/textencoder";
    public static final String MAX_NORM_KEYS_SCALED = "max_norm/keys_scaled";
    public static final String MAX_NORM_AVERAGE = "max_norm/average_key_norm";
    public static final String MAX_NORM_LARGEST = "max_norm/max_key_norm";

    private final TensorBoardWriter writer;
    private final boolean referenceTags;

    private TrainLogger(TensorBoardWriter writer, boolean referenceTags) {
        this.writer = writer;
        this.referenceTags = referenceTags;
    }

    /** {@code <loggingDir>/<prefix><start as YYYYmmddHHMMSS>/<tracker>} (no separator after the prefix). */
    public static Path runDir(Path loggingDir, String prefix, String tracker, LocalDateTime start) {
        return loggingDir.resolve(prefix + start.format(DateTimeFormatter.ofPattern("yyyyMMddHHmmss"))).resolve(tracker);
    }

    /** Opens the event file of a run; {@code clock} gives wall time in seconds for each event. */
    public static TrainLogger open(TrainConfig.Log cfg, LocalDateTime start, long startSeconds, String host,
                                   DoubleSupplier clock) throws IOException {
        Path dir = runDir(cfg.loggingDir(), cfg.logPrefix(), cfg.trackerName(), start);
        return new TrainLogger(TensorBoardWriter.create(dir, startSeconds, host, clock), cfg.referenceLrTags());
    }

    public Path file() {
        return writer.file();
    }

    /**
     * Logs one micro-batch.
     *
     * @param unetLr the U-Net group's lr (NaN when the U-Net is not trained)
     * @param teLr   the text-encoder group's lr (NaN when the text encoders are not trained)
     */
    public void microBatch(long globalStep, float loss, double average, double unetLr, double teLr) throws IOException {
        writer.scalar(LOSS_CURRENT, globalStep, loss);
        writer.scalar(LOSS_AVERAGE, globalStep, (float) average);
        if (referenceTags) {
            // the reference's single tag: the last group's lr (U-Net when trained, otherwise the text encoder)
            writer.scalar(LR_UNET, globalStep, (float) (Double.isNaN(unetLr) ? teLr : unetLr));
            return;
        }
        if (!Double.isNaN(unetLr)) {
            writer.scalar(LR_UNET, globalStep, (float) unetLr);
        }
        if (!Double.isNaN(teLr)) {
            writer.scalar(LR_TEXT_ENCODER, globalStep, (float) teLr);
        }
    }

    /**
     * Logs a micro-batch's max-norm pass ({@code --scale_weight_norms}) under the reference's tags: modules scaled, the
     * mean and the largest module norm after it (0 where nothing was scaled).
     */
    public void maxNorm(long globalStep, int keysScaled, double average, double largest) throws IOException {
        writer.scalar(MAX_NORM_KEYS_SCALED, globalStep, keysScaled);
        writer.scalar(MAX_NORM_AVERAGE, globalStep, (float) average);
        writer.scalar(MAX_NORM_LARGEST, globalStep, (float) largest);
    }

    /** Logs the end of epoch {@code epoch} (0-based) at step epoch+1. */
    public void epoch(int epoch, double average) throws IOException {
        writer.scalar(LOSS_EPOCH, epoch + 1L, (float) average);
    }

    /** Logs a sample image (PNG bytes, RGB). */
    public void sample(String tag, long globalStep, int width, int height, byte[] png) throws IOException {
        writer.image(tag, globalStep, width, height, 3, png);
    }

    @Override
    public void close() throws IOException {
        writer.close();
    }
}
