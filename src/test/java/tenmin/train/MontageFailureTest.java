package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.testing.LogLines;
import tenmin.testing.TrainRuns;

/**
 * The sample montage is made after the last LoRA is saved: when it cannot be made (on a GPU server the JDK found
 * no fonts; here its file cannot be written) the run still completes, with a warning and without the montage.
 */
class MontageFailureTest {
    @TempDir
    Path tmp;

    @Test
    void aMontageThatCannotBeWrittenIsAWarningNotAFailure() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Path prompts = Files.writeString(tmp.resolve("p.txt"), "ohwx --w 64 --h 64 --s 2 --d 3\n");
        Path out = tmp.resolve("out");
        // a non-empty directory where the montage should go: the montage's rename fails
        Files.createDirectories(out.resolve("sample").resolve("montage.png").resolve("blocker"));
        LogLines log = new LogLines();
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, out, "--max_train_steps=2",
                "--sample_prompts=" + prompts, "--sample_every_n_steps=2"), log);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertTrue(Files.isRegularFile(out.resolve("last.safetensors")), "the LoRA is saved");
        assertNull(r.montage());
        assertTrue(!r.outputs().containsKey("sample montage"), r.outputs().toString());
        assertEquals(1, log.count("WARNING: could not write the sample montage", "not affected"), log.lines().toString());
        try (var files = Files.list(out.resolve("sample"))) {
            assertEquals(1, files.filter(f -> f.getFileName().toString().startsWith("000002_00_")).count(),
                    "the step's sample is saved");
        }
    }
}
