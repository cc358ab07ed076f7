package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;
import tenmin.testing.TrainRuns;

/**
 * {@code --v_parameterization --zero_terminal_snr} through a whole run: the same draws as an epsilon run (the noise,
 * timesteps and inputs do not depend on the target) but another target, so another loss; samples are drawn; the
 * file says {@code modelspec.prediction_type} v.
 */
class VPredictionTrainingTest {
    @TempDir
    Path tmp;

    @Test
    void aVPredictionRunTrainsSamplesAndRecordsIt() throws Exception {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Path prompts = Files.writeString(tmp.resolve("p.txt"), "ohwx --w 64 --h 64 --s 2 --l 1 --d 3\n");
        Trainer.Result eps = TrainRuns.train(TrainRuns.config(data, tmp.resolve("eps"), "--max_train_steps=1"),
                Reporter.SILENT);
        Trainer.Result v = TrainRuns.train(TrainRuns.config(data, tmp.resolve("v"), "--max_train_steps=1",
                "--v_parameterization", "--zero_terminal_snr", "--sample_prompts=" + prompts, "--sample_every_n_steps=1"),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, v.outcome(), v.message());
        assertNotEquals(eps.losses(), v.losses());
        assertTrue(v.losses().stream().allMatch(l -> Float.isFinite(l) && l > 0), v.losses().toString());
        assertTrue(Cli.listing(tmp.resolve("v/sample")).stream().anyMatch(n -> n.startsWith("000001_00_")),
                Cli.listing(tmp.resolve("v/sample")).toString());
        try (SafetensorsFile f = SafetensorsFile.open(v.lastLora())) {
            assertEquals("v", f.metadata().get("modelspec.prediction_type"));
            assertEquals("True", f.metadata().get("ss_zero_terminal_snr"));
        }
    }
}
