package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.Color;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;
import tenmin.testing.WithProperty;

/**
 * The loop reads a micro-batch's loss after issuing the next one of its accumulation window ({@code TENMIN_OVERLAP},
 * on by default): the same run with it off gives the same losses, in the same order, and the same LoRA, bit for bit
 * on the CPU backend; only when the host waits changes.
 */
class OverlapTest {
    @TempDir
    Path tmp;

    private Trainer.Result run(Path data, Path out, boolean overlap) {
        // 4 images x 2 repeats, batch 2: 4 micro-batches per epoch; accumulation 2 (TrainRuns' recipe): the first of
        // each window is read late
        return WithProperty.with(Trainer.OVERLAP_PROPERTY, overlap ? "1" : "0",
                () -> TrainRuns.train(TrainRuns.config(data, out, "--max_train_steps=4"), Reporter.SILENT));
    }

    @Test
    void sameLossesAndLoraWithAndWithout() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.BLUE, "ohwx, blue disc");
        Trainer.Result on = run(data, tmp.resolve("on"), true);
        Trainer.Result off = run(data, tmp.resolve("off"), false);
        assertEquals(Trainer.Outcome.COMPLETED, on.outcome(), on.message());
        assertEquals(4, on.steps());
        assertEquals(8, on.losses().size(), "4 steps of 2 micro-batches");
        assertEquals(off.losses(), on.losses());
        try (SafetensorsFile a = SafetensorsFile.open(off.lastLora()); SafetensorsFile b = SafetensorsFile.open(on.lastLora())) {
            assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                assertArrayEquals(a.readFloats(key), b.readFloats(key), key);  // the metadata holds times and paths
            }
        }
    }
}
