package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.core.WithProperty;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;

/**
 * The loop reads a micro-batch's loss after issuing the next one of its accumulation window ({@code TENMIN_OVERLAP},
 * on by default), and issues a micro-batch's text-encoder backward after the next one's U-Net forward
 * ({@code TENMIN_TE_PIPELINE}, on by default): the same run with either off gives the same losses, in the same order,
 * and the same LoRA, bit for bit on the CPU backend; only when the host waits changes.
 */
class OverlapTest {
    @TempDir
    Path tmp;

    private Trainer.Result run(Path data, Path out, boolean overlap) {
        return run(data, out, overlap, true);
    }

    private Trainer.Result run(Path data, Path out, boolean overlap, boolean pipeline, String... extra) {
        // 4 images x 2 repeats, batch 2: 4 micro-batches per epoch; accumulation 2 (TrainRuns' recipe): the first of
        // each window is read late, and its text encoders' backward is issued inside the second's
        List<String> args = new ArrayList<>(List.of("--max_train_steps=4"));
        args.addAll(List.of(extra));
        return WithProperty.with(Trainer.OVERLAP_PROPERTY, overlap ? "1" : "0",
                () -> WithProperty.with(Trainer.PIPELINE_PROPERTY, pipeline ? "1" : "0",
                        () -> TrainRuns.train(TrainRuns.config(data, out, args.toArray(String[]::new)), Reporter.SILENT)));
    }

    private static void assertSameRun(Trainer.Result expected, Trainer.Result actual) {
        assertEquals(Trainer.Outcome.COMPLETED, actual.outcome(), actual.message());
        assertEquals(expected.losses(), actual.losses());
        try (SafetensorsFile a = SafetensorsFile.open(expected.lastLora());
             SafetensorsFile b = SafetensorsFile.open(actual.lastLora())) {
            assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                assertArrayEquals(a.readFloats(key), b.readFloats(key), key);  // the metadata holds times and paths
            }
        }
    }

    @Test
    void sameLossesAndLoraWithTheTextEncodersBackwardInTheNextMicroBatch() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.BLUE, "ohwx, blue disc");
        long before = Trainer.TextEncoderBackward.ISSUED.get();
        Trainer.Result pipelined = run(data, tmp.resolve("pipelined"), false, true);
        assertEquals(4, Trainer.TextEncoderBackward.ISSUED.get() - before, "one deferred per window of 2, 4 windows");
        Trainer.Result direct = run(data, tmp.resolve("direct"), false, false);
        assertEquals(4, Trainer.TextEncoderBackward.ISSUED.get() - before, "none deferred with it off");
        assertEquals(8, pipelined.losses().size());
        assertSameRun(direct, pipelined);
    }

    @Test
    void theSameWithCheckpointedBlocks() {
        // the U-Net's blocks and the text encoders' layers recomputed in the backward (kohya's --gradient_checkpointing)
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.BLUE, "ohwx, blue disc");
        Trainer.Result pipelined = run(data, tmp.resolve("pipelined"), true, true, "--gradient_checkpointing");
        Trainer.Result direct = run(data, tmp.resolve("direct"), true, false, "--gradient_checkpointing");
        assertEquals(8, pipelined.losses().size());
        assertSameRun(direct, pipelined);
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
        assertSameRun(off, on);
    }
}
