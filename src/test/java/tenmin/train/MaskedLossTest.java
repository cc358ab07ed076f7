package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.IntBinaryOperator;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.testing.TrainRuns;

/**
 * {@code --masked_loss} with {@code conditioning_data_dir} subsets: a mask image's red channel weighs the loss as an
 * image's own alpha does under {@code --alpha_mask} — the same run, loss for loss and weight for weight, when the
 * masks equal the alphas — and a black mask teaches nothing; missing, extra or mis-sized masks and half-given
 * configurations are one-line errors.
 */
class MaskedLossTest {
    @TempDir
    Path tmp;

    /** 4 images 64x64: stripes in colour, and {@code alpha(x, y)} as their alpha channel (ARGB). */
    private Path images(String name, boolean withAlpha, IntBinaryOperator alpha) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        for (int i = 0; i < 4; i++) {
            BufferedImage img = new BufferedImage(64, 64, withAlpha ? BufferedImage.TYPE_INT_ARGB
                    : BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 64; y++) {
                for (int x = 0; x < 64; x++) {
                    int rgb = (x + 8 * i) % 64 < 32 ? 0xFF0000 : 0x2040FF;
                    img.setRGB(x, y, (withAlpha ? alpha.applyAsInt(x, y) : 255) << 24 | rgb);
                }
            }
            ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
            Files.writeString(dir.resolve("img" + i + ".txt"), "ohwx, stripes");
        }
        return dir;
    }

    /** Grey mask images of {@code size} whose red channel is {@code value(x, y)}, named as the images. */
    private Path masks(String name, int count, int size, IntBinaryOperator value) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        for (int i = 0; i < count; i++) {
            BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < size; y++) {
                for (int x = 0; x < size; x++) {
                    int v = value.applyAsInt(x, y);
                    img.setRGB(x, y, v << 16 | v << 8 | v);
                }
            }
            ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
        }
        return dir;
    }

    private Path config(Path images, Path masks) throws Exception {
        String cond = masks == null ? "" : "conditioning_data_dir = \"" + masks + "\"\n";
        return Files.writeString(tmp.resolve("dataset-" + images.getFileName() + ".toml"), """
                [[datasets]]
                  [[datasets.subsets]]
                  image_dir = "%s"
                  num_repeats = 2
                  caption_extension = ".txt"
                  %s""".formatted(images, cond));
    }

    private Trainer.Result run(String out, String... flags) {
        String[] all = java.util.stream.Stream.concat(java.util.stream.Stream.of("--max_train_steps=2",
                "--save_precision=float"), java.util.stream.Stream.of(flags)).toArray(String[]::new);
        Trainer.Result r = TrainRuns.train(TrainRuns.config(tmp.resolve("unused"), tmp.resolve(out), all),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        return r;
    }

    @Test
    void masksWeighTheLossAsTheImagesOwnAlphaDoes() throws Exception {
        IntBinaryOperator pattern = (x, y) -> x < 24 ? 255 : y < 40 ? 128 : 0;
        Path plain = images("plain", false, null);
        Path withAlpha = images("alpha", true, pattern);
        Path masks = masks("masks", 4, 64, pattern);
        Trainer.Result masked = run("masked", "--dataset_config=" + config(plain, masks), "--masked_loss");
        Trainer.Result alpha = run("alpha-run", "--dataset_config=" + config(withAlpha, null), "--alpha_mask");
        assertEquals(alpha.losses(), masked.losses());
        TrainRuns.assertSameLora(alpha.lastLora(), masked.lastLora());
        Trainer.Result black = run("black", "--dataset_config=" + config(plain, masks("black", 4, 64, (x, y) -> 0)),
                "--masked_loss");
        for (double loss : black.losses()) {
            assertEquals(0.0, loss, "a black mask ignores every value");
        }
    }

    @Test
    void missingExtraOrMisSizedMasksAndHalfConfigurationsAreErrors() throws Exception {
        Path plain = images("plain", false, null);
        InputException missing = assertThrows(InputException.class, () -> run("m",
                "--dataset_config=" + config(plain, masks("three", 3, 64, (x, y) -> 255)), "--masked_loss"));
        assertTrue(missing.getMessage().contains("no mask") && missing.getMessage().contains("img3.png"),
                missing.getMessage());
        Path five = masks("five", 4, 64, (x, y) -> 255);
        Files.copy(five.resolve("img0.png"), five.resolve("stray.png"));
        InputException extra = assertThrows(InputException.class, () -> run("e",
                "--dataset_config=" + config(plain, five), "--masked_loss"));
        assertTrue(extra.getMessage().contains("stray.png"), extra.getMessage());
        InputException size = assertThrows(InputException.class, () -> run("s",
                "--dataset_config=" + config(plain, masks("small", 4, 32, (x, y) -> 255)), "--masked_loss"));
        assertTrue(size.getMessage().contains("32x32") && size.getMessage().contains("64x64"), size.getMessage());
        InputException noDirs = assertThrows(InputException.class, () -> run("n",
                "--dataset_config=" + config(plain, null), "--masked_loss"));
        assertTrue(noDirs.getMessage().contains("conditioning_data_dir"), noDirs.getMessage());
        InputException noFlag = assertThrows(InputException.class, () -> run("f",
                "--dataset_config=" + config(plain, masks("white", 4, 64, (x, y) -> 255))));
        assertTrue(noFlag.getMessage().contains("--masked_loss"), noFlag.getMessage());
        InputException both = assertThrows(InputException.class, () -> run("b",
                "--dataset_config=" + config(plain, masks("white2", 4, 64, (x, y) -> 255)), "--masked_loss",
                "--alpha_mask"));
        assertTrue(both.getMessage().contains("alpha_mask"), both.getMessage());
    }
}
