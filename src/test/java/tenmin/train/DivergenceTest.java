package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;
import tenmin.testing.TrainRuns;

/**
 * A loss that becomes NaN or infinite stops the run with one clear line and exit code 1: the weights that
 * produced it are not saved, and the last good save (and its resume state) stays in place.
 */
class DivergenceTest {
    @TempDir
    Path tmp;

    @Test
    void nonFiniteLossStopsAndKeepsTheLastGoodSave() {
        diverges("1");
    }

    /**
     * With accumulation the first micro-batch of a window is read after the next one is issued (Trainer's overlap):
     * its non-finite loss still stops the run before an optimizer step uses its gradients.
     */
    @Test
    void nonFiniteLossReadAfterTheNextMicroBatchStopsTheSameWay() {
        diverges("2");
    }

    private void diverges(String accumulation) {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 2, Color.RED, "disc");
        Path out = tmp.resolve("out");
        // plain SGD with an absurd learning rate: step 1 lands on huge (still finite) weights, the next loss overflows
        List<String> args = new ArrayList<>(List.of("train"));
        args.addAll(TrainRuns.args(data, out, "--optimizer_type=SGD", "--learning_rate=1e30", "--unet_lr=1e30",
                "--text_encoder_lr=1e30", "--max_grad_norm=0", "--gradient_accumulation_steps=" + accumulation,
                "--save_every_n_steps=1", "--max_train_steps=6", "--save_precision=float"));
        Cli.Run run = Cli.run(args.toArray(String[]::new));
        assertEquals(1, run.exit(), run.toString());
        String error = run.err().lines().filter(l -> l.startsWith("tenmin train: error: ")).findFirst().orElseThrow();
        assertTrue(error.matches(".*the (loss|gradient norm) is (NaN|Infinity) at step \\d+.*"), error);
        if (accumulation.equals("2")) {
            // 2 micro-batches per epoch, one step each: the first of epoch 2, read only after the second was issued,
            // is the one named
            assertTrue(error.contains("the loss is") && error.contains("(epoch 2, micro-batch 1)"), error);
        }
        assertTrue(error.contains("the last good save is " + out.resolve("at-step00000001.safetensors")), error);
        assertTrue(error.contains("at-step00000001.tenmin-state"), error);
        assertFalse(Files.exists(out.resolve("last.safetensors")), "no final save after divergence");
        int saves = 0;
        for (String name : Cli.listing(out)) {
            if (name.endsWith(".safetensors")) {
                saves++;
                try (SafetensorsFile f = SafetensorsFile.open(out.resolve(name))) {
                    for (String key : f.names()) {
                        for (float v : f.readFloats(key)) {
                            assertTrue(Float.isFinite(v), name + " " + key + " holds " + v);
                        }
                    }
                }
            }
        }
        assertTrue(saves >= 1, Cli.listing(out).toString());
        assertTrue(Files.exists(out.resolve("at-step00000001.tenmin-state")));
    }
}
