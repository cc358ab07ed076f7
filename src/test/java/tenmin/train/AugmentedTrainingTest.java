package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;

/**
 * {@code --random_crop} and {@code --color_aug} in whole runs without cached latents: they change the run, a stopped
 * and resumed run draws the uninterrupted one's crops and colours (each draw's augmentation comes from the draw's own
 * seed), the metadata records them, and they are refused with cached latents as in the reference.
 */
class AugmentedTrainingTest {
    @TempDir
    static Path tmp;
    static Path data;
    static Trainer.Result straight;

    /** The toy recipe without --cache_latents (latents encoded at every draw), 4 steps. */
    private static TrainConfig config(Path out, String... extra) {
        List<String> args = new ArrayList<>(TrainRuns.args(data, out, "--max_train_steps=4"));
        args.remove("--cache_latents");
        args.addAll(List.of(extra));
        return TrainTestConfigs.parse(args);
    }

    @BeforeAll
    static void augmented() {
        data = tmp.resolve("data");
        // 96x64 images: resized to cover the 64x64 bucket they keep their size, so the crop has 32 columns to move
        Path dir = data.resolve("2_ohwx stripe");
        try {
            java.nio.file.Files.createDirectories(dir);
            for (int i = 0; i < 4; i++) {
                java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(96, 64,
                        java.awt.image.BufferedImage.TYPE_INT_RGB);
                for (int x = 0; x < 96; x++) {
                    for (int y = 0; y < 64; y++) {
                        img.setRGB(x, y, new Color(Math.min(255, x * 2 + i * 10), 40 + y, 200 - x).getRGB());
                    }
                }
                javax.imageio.ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
                java.nio.file.Files.writeString(dir.resolve("img" + i + ".txt"), "ohwx, stripe");
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        straight = TrainRuns.train(config(tmp.resolve("straight"), "--random_crop", "--color_aug"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, straight.outcome(), straight.message());
    }

    @Test
    void augmentationChangesTheRunAndTheMetadataSaysSo() {
        Trainer.Result plain = TrainRuns.train(config(tmp.resolve("plain")), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, plain.outcome(), plain.message());
        assertNotEquals(plain.losses(), straight.losses());
        Trainer.Result cropped = TrainRuns.train(config(tmp.resolve("cropped"), "--random_crop"), Reporter.SILENT);
        assertNotEquals(plain.losses(), cropped.losses(), "random crops alone change the latents");
        try (SafetensorsFile f = SafetensorsFile.open(straight.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals("True", m.get("ss_random_crop"));
            assertEquals("True", m.get("ss_color_aug"));
        }
    }

    @Test
    void aResumedRunDrawsTheSameCropsAndColours() {
        Path out = tmp.resolve("resumed");
        Trainer[] holder = new Trainer[1];
        Trainer.Result stopped = TrainRuns.train(holder, config(out, "--random_crop", "--color_aug"),
                ResumeTest.stopAfterMicroBatch(holder, 5));
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        Trainer.Result resumed = TrainRuns.train(config(out, "--random_crop", "--color_aug",
                "--resume=" + stopped.lastState()), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        TrainRuns.assertSameLora(straight.lastLora(), resumed.lastLora());
    }

    @Test
    void refusedWithCachedLatentsAndWithAlphaMasks() {
        for (String aug : List.of("--random_crop", "--color_aug")) {
            InputException cached = assertThrows(InputException.class,
                    () -> TrainRuns.config(data, tmp.resolve("bad"), aug));       // TrainRuns caches latents
            assertTrue(cached.getMessage().contains(aug.substring(2)) && cached.getMessage().contains("cache_latents"),
                    cached.getMessage());
            InputException masked = assertThrows(InputException.class,
                    () -> config(tmp.resolve("bad"), aug, "--alpha_mask"));
            assertTrue(masked.getMessage().contains(aug.substring(2)), masked.getMessage());
        }
    }
}
