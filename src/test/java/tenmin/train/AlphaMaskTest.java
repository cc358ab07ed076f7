package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.testing.TrainRuns;

/**
 * {@code --alpha_mask} through a whole run: fully transparent training images teach nothing (every micro-batch's
 * loss is exactly 0), opaque ones train as without the flag; the mask's block average.
 */
class AlphaMaskTest {
    @TempDir
    Path tmp;

    private Path images(String folder, int alpha) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(folder).resolve("2_disc"));
        for (int i = 0; i < 4; i++) {
            BufferedImage img = new BufferedImage(64, 64, BufferedImage.TYPE_INT_ARGB);
            for (int y = 0; y < 64; y++) {
                for (int x = 0; x < 64; x++) {
                    img.setRGB(x, y, alpha << 24 | ((x + 8 * i) % 64 < 32 ? 0xFF0000 : 0xFFFFFF));
                }
            }
            ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
            Files.writeString(dir.resolve("img" + i + ".txt"), "ohwx, red disc");
        }
        return tmp.resolve(folder);
    }

    @Test
    void transparentImagesTeachNothingAndOpaqueOnesTrainAsBefore() throws Exception {
        Trainer.Result clear = TrainRuns.train(TrainRuns.config(images("clear", 0), tmp.resolve("out-clear"),
                "--alpha_mask", "--max_train_steps=2", "--save_every_n_steps=100"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, clear.outcome(), clear.message());
        assertTrue(clear.losses().stream().allMatch(l -> l == 0f), clear.losses().toString());
        Path opaque = images("opaque", 255);
        Trainer.Result masked = TrainRuns.train(TrainRuns.config(opaque, tmp.resolve("out-masked"), "--alpha_mask",
                "--max_train_steps=2", "--save_every_n_steps=100"), Reporter.SILENT);
        Trainer.Result plain = TrainRuns.train(TrainRuns.config(opaque, tmp.resolve("out-plain"), "--max_train_steps=2",
                "--save_every_n_steps=100"), Reporter.SILENT);
        for (int i = 0; i < plain.losses().size(); i++) {
            assertEquals(plain.losses().get(i), masked.losses().get(i), 1e-6 * plain.losses().get(i), "loss " + i);
        }
    }

    @Test
    void masksAverageTheirBlocks() {
        float[] m = new float[4 * 2];               // 4 x 2, factor 2: two blocks
        m[0] = 1;
        m[5] = 1;
        m[2] = 0.5f;
        assertArrayEquals(new float[] {0.5f, 0.125f}, AlphaMasks.area(m, 4, 2, 2));
    }
}
