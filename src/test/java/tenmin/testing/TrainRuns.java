package tenmin.testing;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;

import javax.imageio.ImageIO;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.train.TrainConfig;
import tenmin.train.Trainer;

/**
 * Small training runs for tests: a dataset of drawn 64x64 images in a {@code <repeats>_<name>} folder, the
 * fixtures' tiny checkpoint as the base model, and a recipe with the guide's mechanics at toy sizes.
 */
public final class TrainRuns {
    private TrainRuns() {
    }

    /**
     * Writes {@code count} 64x64 images of a {@code color} disc on white with slightly different sizes and
     * positions, each with the caption {@code caption}, into {@code root/<folder>}; returns the folder.
     */
    public static Path discs(Path root, String folder, int count, Color color, String caption) {
        return images(root.resolve(folder), count, caption, (g, i) -> {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, 64, 64);
            g.setColor(color);
            int r = 18 + 3 * (i % 4);
            g.fillOval(32 - r + (i % 3) * 2, 32 - r + (i % 2) * 3, 2 * r, 2 * r);
        });
    }

    /**
     * Writes {@code count} 64x64 images of a {@code color} square on {@code background}, sizes and positions
     * varying, each captioned {@code caption}, into {@code root/<folder>}; returns the folder.
     */
    public static Path squares(Path root, String folder, int count, Color color, Color background, String caption) {
        return images(root.resolve(folder), count, caption, (g, i) -> {
            g.setColor(background);
            g.fillRect(0, 0, 64, 64);
            g.setColor(color);
            int side = 28 + 4 * (i % 4);
            g.fillRect(32 - side / 2 + (i % 3) * 3, 32 - side / 2 - (i % 2) * 2, side, side);
        });
    }

    /** {@code img<i>.png} (64x64 RGB, drawn by {@code painter} for image i) and {@code img<i>.txt} in {@code dir}. */
    private static Path images(Path dir, int count, String caption, BiConsumer<Graphics2D, Integer> painter) {
        try {
            Files.createDirectories(dir);
            for (int i = 0; i < count; i++) {
                BufferedImage img = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
                Graphics2D g = img.createGraphics();
                painter.accept(g, i);
                g.dispose();
                ImageIO.write(img, "png", dir.resolve("img" + i + ".png").toFile());
                Files.writeString(dir.resolve("img" + i + ".txt"), caption);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    /** The fixtures' tiny single-file checkpoint. */
    public static Path checkpoint() {
        return Fixtures.require("models/tiny-a/checkpoint.safetensors");
    }

    /** Its sizes. */
    public static Path modelConfig() {
        return Fixtures.require("models/tiny-a/config.json");
    }

    /**
     * The recipe at toy size: LoCon preset full (dim 4 alpha 2, conv 8/4 as the fixture LoCon), ClybW, cosine
     * 0.375, batch 2 × accumulation 2, multires noise, flips, caption shuffling, cached latents, fp16 saves
     * every 2 steps, 64x64, seed 7, two CPU threads. {@code extra} flags are appended (later ones win).
     */
    public static List<String> args(Path data, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of(
                "--pretrained_model_name_or_path=" + checkpoint(), "--model_config=" + modelConfig(),
                "--train_data_dir=" + data, "--output_dir=" + out, "--resolution=64,64", "--enable_bucket",
                "--min_bucket_reso=64", "--max_bucket_reso=128", "--bucket_reso_steps=32", "--caption_extension=.txt",
                "--network_module=lycoris.kohya", "--network_dim=4", "--network_alpha=2", "--network_args",
                "preset=full", "conv_dim=8", "conv_alpha=4", "algo=locon", "--optimizer_type=ClybW",
                "--lr_scheduler=cosine", "--lr_scheduler_args=num_cycles=0.375", "--learning_rate=1e-3",
                "--unet_lr=1e-3", "--text_encoder_lr=5e-4", "--max_grad_norm=1", "--train_batch_size=2",
                "--gradient_accumulation_steps=2", "--max_train_steps=6", "--multires_noise_iterations=3",
                "--multires_noise_discount=0.4", "--flip_aug", "--shuffle_caption", "--cache_latents",
                "--save_every_n_steps=2", "--save_precision=fp16", "--seed=7", "--device=cpu", "--cpu_threads=2"));
        a.addAll(List.of(extra));
        return a;
    }

    public static TrainConfig config(Path data, Path out, String... extra) {
        return TrainTestConfigs.parse(args(data, out, extra));
    }

    /** Runs {@code cfg} on a fresh two-thread CPU backend; checks that every tensor was released. */
    public static Trainer.Result train(TrainConfig cfg, Reporter reporter) {
        return train(new Trainer[1], cfg, reporter);
    }

    /** As {@link #train(TrainConfig, Reporter)}, handing out the trainer (to stop it from a reporter callback). */
    public static Trainer.Result train(Trainer[] holder, TrainConfig cfg, Reporter reporter) {
        try (CpuBackend backend = new CpuBackend(2)) {
            return train(holder, cfg, reporter, backend);
        }
    }

    /** Runs {@code cfg} on {@code backend} (not closed here); checks that every tensor was released. */
    public static Trainer.Result train(Trainer[] holder, TrainConfig cfg, Reporter reporter, Backend backend) {
        try {
            Trainer t = new Trainer(cfg, new Trainer.Environment(backend, reporter, java.time.Clock.systemDefaultZone(),
                    "tenmin test"));
            holder[0] = t;
            Trainer.Result r = t.run();
            if (backend.liveTensors() != 0) {
                throw new AssertionError(backend.liveTensors() + " tensors left alive after training");
            }
            return r;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The two LoRA files hold the same tensors, value for value (bit for bit; the metadata holds times and paths). */
    public static void assertSameLora(Path expected, Path actual) {
        try (tenmin.formats.SafetensorsFile a = tenmin.formats.SafetensorsFile.open(expected);
             tenmin.formats.SafetensorsFile b = tenmin.formats.SafetensorsFile.open(actual)) {
            org.junit.jupiter.api.Assertions.assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(a.readFloats(key), b.readFloats(key), key);
            }
        }
    }

    /** Every tensor of a LoRA file, in file order, as one array (for comparisons with a tolerance). */
    public static float[] flat(Path file) {
        try (tenmin.formats.SafetensorsFile f = tenmin.formats.SafetensorsFile.open(file)) {
            List<float[]> all = new ArrayList<>();
            int n = 0;
            for (String k : f.names()) {
                float[] v = f.readFloats(k);
                all.add(v);
                n += v.length;
            }
            float[] out = new float[n];
            int at = 0;
            for (float[] v : all) {
                System.arraycopy(v, 0, out, at, v.length);
                at += v.length;
            }
            return out;
        }
    }
}
