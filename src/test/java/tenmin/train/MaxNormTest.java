package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;

/**
 * {@code --scale_weight_norms} (LyCORIS 3.1's max-norm regularisation through its per-module scalar): every module's
 * delta in the saved file, ‖(alpha/r)·up·down‖_F computed here in double from the file's values, is at most the
 * bound, with modules that reached it exactly, where the same run without it exceeds the bound; a resumed run keeps
 * the scalars; TensorBoard gets the reference's tags and the metadata the value.
 */
class MaxNormTest {
    @TempDir
    static Path tmp;
    static Path data;
    /** Half the median module norm of the same run without the regularisation: most modules must be scaled. */
    static double bound;
    static Trainer.Result free;
    static Trainer.Result straight;

    /** Large steps, so that deltas outgrow the bound within a few steps; saved in fp32 for the norms. */
    private static String[] flags(String... extra) {
        List<String> all = new ArrayList<>(List.of("--max_train_steps=4", "--optimizer_type=SGD", "--learning_rate=0.3",
                "--unet_lr=0.3", "--text_encoder_lr=0.3", "--save_precision=float"));
        all.addAll(List.of(extra));
        return all.toArray(String[]::new);
    }

    @BeforeAll
    static void regularised() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.ORANGE, "ohwx, orange disc");
        free = TrainRuns.train(TrainRuns.config(data, tmp.resolve("free"), flags()), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, free.outcome(), free.message());
        List<Double> sorted = norms(free.lastLora()).stream().sorted().toList();
        bound = sorted.get(sorted.size() / 2) / 2;
        assertTrue(bound > 0);
        straight = TrainRuns.train(TrainRuns.config(data, tmp.resolve("straight"), flags("--scale_weight_norms=" + bound,
                "--save_state", "--logging_dir=" + tmp.resolve("logs"), "--log_with=tensorboard")), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, straight.outcome(), straight.message());
    }

    /** ‖(alpha/r)·up·down‖_F of every module of a LoRA file, in double. */
    static List<Double> norms(Path file) {
        List<Double> out = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String key : f.names()) {
                if (!key.endsWith(".lora_up.weight")) {
                    continue;
                }
                String module = key.substring(0, key.length() - ".lora_up.weight".length());
                float[] up = f.readFloats(key);
                float[] down = f.readFloats(module + ".lora_down.weight");
                int r = (int) f.info(key).shape()[1];
                int rows = up.length / r;
                int cols = down.length / r;
                double scale = f.readScalar(module + ".alpha") / r;
                double sq = 0;
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        double v = 0;
                        for (int k = 0; k < r; k++) {
                            v += (double) up[i * r + k] * down[k * cols + j];
                        }
                        sq += v * v;
                    }
                }
                out.add(Math.sqrt(sq) * scale);
            }
        }
        return out;
    }

    @Test
    void everyModuleEndsWithinTheBoundAndTheLargestAtIt() {
        List<Double> unbounded = norms(free.lastLora());
        long over = unbounded.stream().filter(n -> n > bound).count();
        assertTrue(over > unbounded.size() / 2, over + " of " + unbounded.size() + " modules over the bound without it");
        List<Double> bounded = norms(straight.lastLora());
        int atBound = 0;
        for (double n : bounded) {
            assertTrue(n <= bound * (1 + 1e-5), "a module's norm " + n + " exceeds " + bound);
            atBound += Math.abs(n - bound) < 1e-5 * bound ? 1 : 0;
        }
        assertTrue(atBound > 10, atBound + " modules scaled to the bound at the last step");
    }

    @Test
    void aResumedRunKeepsTheScalars() {
        Path out = tmp.resolve("resumed");
        Trainer[] holder = new Trainer[1];
        Trainer.Result stopped = TrainRuns.train(holder, TrainRuns.config(data, out, flags("--scale_weight_norms="
                + bound)), ResumeTest.stopAfterMicroBatch(holder, 5));
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        Trainer.Result resumed = TrainRuns.train(TrainRuns.config(data, out, flags("--scale_weight_norms=" + bound,
                "--resume=" + stopped.lastState())), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        TrainRuns.assertSameLora(straight.lastLora(), resumed.lastLora());
    }

    @Test
    void metadataAndTensorBoardRecordIt() throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(straight.lastLora())) {
            assertEquals(bound, Double.parseDouble(f.metadata().get("ss_scale_weight_norms")));
        }
        List<Path> events;
        try (var files = Files.walk(tmp.resolve("logs"))) {
            events = files.filter(p -> p.getFileName().toString().startsWith("events.out")).toList();
        }
        assertEquals(1, events.size());
        String bytes = new String(Files.readAllBytes(events.getFirst()), StandardCharsets.ISO_8859_1);
        for (String tag : List.of("max_norm/keys_scaled", "max_norm/average_key_norm", "max_norm/max_key_norm")) {
            assertTrue(bytes.contains(tag), tag);
        }
        InputException e = assertThrows(InputException.class,
                () -> TrainRuns.config(data, tmp.resolve("bad"), "--scale_weight_norms=-1"));
        assertTrue(e.getMessage().contains("scale_weight_norms"), e.getMessage());
    }
}
