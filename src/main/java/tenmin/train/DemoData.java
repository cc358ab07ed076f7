package tenmin.train;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.Polygon;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.formats.AtomicFile;
import tenmin.formats.PngFile;
import tenmin.formats.RgbImage;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlModels;

/**
 * The built-in demo's dataset, drawn by code (no downloads): a few coloured shapes on plain backgrounds in
 * a kohya folder {@code 4_ohwx shapes} (4 repeats, class token "ohwx shapes"), a {@code .txt} caption per
 * image with comma-separated tags (so caption shuffling has something to shuffle), two image sizes (so
 * there are two aspect-ratio buckets), and a sample-prompt file in kohya's line format.
 *
 * <p>Files are only rewritten when their content changes, so a second demo run reuses the latent cache.
 */
public final class DemoData {
    /** The dataset folder's name. */
    public static final String SUBSET = "4_ohwx shapes";
    /** The sample-prompt file's name inside the dataset root. */
    public static final String PROMPTS = "sample-prompts.txt";
    /**
     * Seed of the demo's random base model (its "checkpoint"; independent of the training seed): {@code tenmin sample}
     * and {@code tenmin atlas} build the same model with {@code --random-model tiny --model-seed} this.
     */
    public static final long MODEL_SEED = 20241015L;
    /** The demo's base model as a checkpoint file, in the output folder ({@link #writeBase}). */
    public static final String BASE = "base.safetensors";
    /** The metadata key that marks the demo's base model file. */
    private static final String BASE_KEY = "tenmin_demo_base";
    /** The first sample prompt of the demo's prompt file, and its settings there. */
    private static final String PROMPT = "ohwx shape, red circle, white background";
    private static final int PROMPT_SIZE = 128;
    private static final int PROMPT_SEED = 1;
    private static final int PROMPT_STEPS = 12;
    private static final int PROMPT_CFG = 4;

    private record Shape(String name, String kind, Color color, String colorName, Color background,
                         String backgroundName, int width, int height) {
    }

    private static final List<Shape> SHAPES = List.of(
            new Shape("red-circle", "circle", new Color(220, 40, 40), "red", Color.WHITE, "white", 128, 128),
            new Shape("blue-square", "square", new Color(40, 70, 210), "blue", new Color(245, 240, 200), "cream", 128, 128),
            new Shape("green-triangle", "triangle", new Color(40, 170, 60), "green", Color.WHITE, "white", 128, 128),
            new Shape("yellow-circle", "circle", new Color(240, 200, 30), "yellow", new Color(40, 40, 60), "dark", 128, 128),
            new Shape("red-square", "square", new Color(200, 30, 50), "red", new Color(200, 230, 250), "light blue", 160, 96),
            new Shape("blue-triangle", "triangle", new Color(50, 90, 230), "blue", new Color(250, 250, 250), "white", 160, 96),
            new Shape("purple-circle", "circle", new Color(140, 50, 180), "purple", new Color(230, 250, 230), "mint", 160, 96),
            new Shape("orange-square", "square", new Color(250, 140, 20), "orange", new Color(30, 30, 30), "black", 160, 96));

    private DemoData() {
    }

    /** What {@link #write} made. */
    public record Written(Path dataDir, Path prompts, int images) {
    }

    /**
     * Writes the dataset under {@code root} ({@code root/4_ohwx shapes/*.png|txt} and
     * {@code root/sample-prompts.txt}).
     */
    public static Written write(Path root) throws IOException {
        Path subset = root.resolve(SUBSET);
        Files.createDirectories(subset);
        for (Shape s : SHAPES) {
            byte[] png = PngFile.encode(RgbImage.from(draw(s)), Map.of());
            writeIfChanged(subset.resolve(s.name() + ".png"), png);
            String caption = caption(s);
            writeIfChanged(subset.resolve(s.name() + ".txt"), caption.getBytes(StandardCharsets.UTF_8));
        }
        String prompts = """
                # tenmin demo sample prompts (kohya format: --w width --h height --d seed --s steps --l CFG scale --n negative)
                %s --w %d --h %d --d %d --s %d --l %d
                ohwx shape, blue square, (cream background:1.2) --n black background --w 160 --h 96 --d 2 --s 12 --l 4
                """.formatted(PROMPT, PROMPT_SIZE, PROMPT_SIZE, PROMPT_SEED, PROMPT_STEPS, PROMPT_CFG);
        Path promptFile = root.resolve(PROMPTS);
        writeIfChanged(promptFile, prompts.getBytes(StandardCharsets.UTF_8));
        return new Written(root, promptFile, SHAPES.size());
    }

    /**
     * Writes the demo's base model (the tiny random model it trains on) as {@code outputDir/base.safetensors}, an fp16
     * checkpoint in SAI's layout, for the guide's steps that take a checkpoint file ({@code resize}, {@code merge});
     * a file an earlier demo wrote with the same model is kept.
     *
     * @return the file
     */
    public static Path writeBase(Path outputDir, SdxlConfig config, Scope scope, Reporter r) throws IOException {
        Path file = outputDir.resolve(BASE);
        String what = "the built-in demo's base model: a tiny SDXL-shaped model, random weights of seed " + MODEL_SEED;
        if (Files.isRegularFile(file)) {
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                if (what.equals(f.metadata().get(BASE_KEY))) {
                    return file;
                }
            } catch (RuntimeException unreadable) {
                // written again below
            }
        }
        Files.createDirectories(outputDir);
        SdxlModels.writeRandomCheckpoint(config, MODEL_SEED, StDType.F16, Map.of(BASE_KEY, what), file, scope);
        r.log(Reporter.Level.INFO, "INFO: wrote " + file + " (" + what + "; fp16)");
        return file;
    }

    /**
     * What the demo suggests next, each an argument list for {@code tenmin}: the guide's other steps on the demo's
     * LoRA {@code lora}, outputs under {@code outputDir}. {@code inspect} (the energy per block), {@code atlas} (each
     * block's effect on the first sample prompt, and a proposed chop vector), {@code chop} (the block layout) and
     * {@code sample} (more images with the LoRA; {@code atlas} and {@code sample} on the demo's base model built again
     * from its seed, as in training), {@code resize} with the guide's recipe and {@code merge}, on the base model's
     * file ({@link #writeBase}).
     */
    public static List<List<String>> nextSteps(Path lora, Path outputDir) {
        String file = lora.toString();
        String base = outputDir.resolve(BASE).toString();
        List<String> model = List.of("--random-model", "tiny", "--model-seed", Long.toString(MODEL_SEED));
        List<String> render = List.of("-p", PROMPT, "-W", Integer.toString(PROMPT_SIZE), "-H",
                Integer.toString(PROMPT_SIZE), "--steps", Integer.toString(PROMPT_STEPS), "--cfg",
                Integer.toString(PROMPT_CFG), "--seed", Integer.toString(PROMPT_SEED));
        List<String> atlas = new ArrayList<>(List.of("atlas"));
        atlas.addAll(model);
        atlas.addAll(List.of("--lora", file));
        atlas.addAll(render);
        atlas.addAll(List.of("-o", outputDir.resolve("atlas").toString()));
        List<String> sample = new ArrayList<>(List.of("sample"));
        sample.addAll(model);
        sample.addAll(List.of("--lora", file + ":0.5"));
        sample.addAll(render);
        sample.addAll(List.of("-o", outputDir.resolve("more").toString()));
        return List.of(List.of("inspect", file), List.copyOf(atlas), List.of("chop", file), List.copyOf(sample),
                List.of("resize", "-r", "fro_ckpt=1,thr=-3.55", base, file),
                List.of("merge", base, file + ":0.8", "-o", outputDir.resolve("merged.safetensors").toString()));
    }

    /**
     * A benchmark dataset of {@code count} images of {@code width}x{@code height} (the demo's shapes and
     * captions, cycled, each shape in a different place) in {@code root/1_ohwx shapes}, and a one-line
     * sample-prompt file at that size with {@code sampleSteps} steps; images are encoded in parallel.
     */
    public static Written writeBenchmark(Path root, int count, int width, int height, int sampleSteps) throws IOException {
        Path subset = root.resolve("1_ohwx shapes");
        Files.createDirectories(subset);
        try {
            java.util.stream.IntStream.range(0, count).parallel().forEach(i -> {
                Shape base = SHAPES.get(i % SHAPES.size());
                Shape s = new Shape(base.name(), base.kind(), base.color(), base.colorName(), base.background(),
                        base.backgroundName(), width, height);
                String name = "%04d-%s".formatted(i, s.name());
                String caption = caption(s);
                try {
                    writeIfChanged(subset.resolve(name + ".png"), PngFile.encode(RgbImage.from(draw(s, i)), Map.of()));
                    writeIfChanged(subset.resolve(name + ".txt"), caption.getBytes(StandardCharsets.UTF_8));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
        Path promptFile = root.resolve(PROMPTS);
        writeIfChanged(promptFile, ("ohwx shape, red circle, white background --n blurry --w %d --h %d --d 1 --s %d --l 7%n")
                .formatted(width, height, sampleSteps).getBytes(StandardCharsets.UTF_8));
        return new Written(root, promptFile, count);
    }

    /** The caption of a drawn shape: comma-separated tags behind the trigger word. */
    private static String caption(Shape s) {
        return "ohwx shape, " + s.colorName() + " " + s.kind() + ", " + s.backgroundName() + " background";
    }

    private static void writeIfChanged(Path file, byte[] content) throws IOException {
        if (Files.isRegularFile(file) && Arrays.equals(Files.readAllBytes(file), content)) {
            return;
        }
        AtomicFile.write(file, content);
    }

    private static BufferedImage draw(Shape s) {
        return draw(s, 0);
    }

    /** {@code s} drawn with its centre moved by an amount that depends on {@code variant} (0: centred). */
    private static BufferedImage draw(Shape s, int variant) {
        BufferedImage img = new BufferedImage(s.width(), s.height(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(s.background());
            g.fillRect(0, 0, s.width(), s.height());
            int size = Math.min(s.width(), s.height()) * 5 / 8;
            int dx = variant == 0 ? 0 : variant * 37 % 9 - 4;
            int dy = variant == 0 ? 0 : variant * 53 % 9 - 4;
            int x = (s.width() - size) / 2 + dx * s.width() / 40;
            int y = (s.height() - size) / 2 + dy * s.height() / 40;
            g.setColor(s.color());
            switch (s.kind()) {
                case "circle" -> g.fillOval(x, y, size, size);
                case "square" -> g.fillRect(x, y, size, size);
                default -> g.fillPolygon(new Polygon(new int[] {x + size / 2, x + size, x}, new int[] {y, y + size, y + size}, 3));
            }
            g.setStroke(new BasicStroke(2f));
            g.setColor(s.color().darker());
            switch (s.kind()) {
                case "circle" -> g.drawOval(x, y, size, size);
                case "square" -> g.drawRect(x, y, size, size);
                default -> g.drawPolygon(new Polygon(new int[] {x + size / 2, x + size, x}, new int[] {y, y + size, y + size}, 3));
            }
        } finally {
            g.dispose();
        }
        return img;
    }
}
