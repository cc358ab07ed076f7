package tenmin.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.formats.A1111Parameters;
import tenmin.formats.AtomicFile;
import tenmin.formats.PngFile;
import tenmin.formats.RgbImage;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.sample.ImageGrid;
import tenmin.sample.LoraSet;
import tenmin.sample.PromptEncoder;
import tenmin.sample.PromptFile.SamplePrompt;
import tenmin.sample.Sampler;
import tenmin.sample.SamplerKind;
import tenmin.sample.SdxlPipeline;
import tenmin.train.log.TrainLogger;

/**
 * Sample images during training (trainer-spec §11): every prompt of the sample file rendered by
 * {@link SdxlPipeline} with the live, LoRA-patched models (no gradients), Euler a by default, classifier-free
 * guidance with the negative prompt when the scale is above 1, decoded by the fp32 VAE, written as
 * {@code <output_dir>/sample/[<output_name>_]<step %06d>_<prompt %02d>_<YYYYmmddHHMMSS>[_<seed>].png} with
 * A1111's {@code parameters} text, and logged as TensorBoard image summaries. At the end
 * {@link #writeMontage} puts every sampling round side by side: one row per prompt, one column per step.
 *
 * <p>Prompts are encoded as kohya's long-prompt pipeline does ({@link PromptEncoder.Options#kohya}): A1111
 * weighting syntax, up to three 75-token chunks per encoder, hidden states of the chunks concatenated, pooled
 * vector from the first chunk; token weights multiply the context, which is then rescaled to keep its mean.
 * Size conditioning: original = target = (height, width), crop (0, 0). A prompt without {@code --d} gets a
 * seed derived from the run's seed, the step and its index (recorded in the PNG), so a run is reproducible.
 * Sampling draws only from generators of its own (one per image, seeded as above), never from the
 * training's, so samples do not change the training run or its resume.
 */
public final class TrainingSamples {
    private static final long SAMPLE_KEY = 0x53414D504C45L; // "SAMPLE"

    private final List<SamplePrompt> prompts;
    private final Path dir;
    private final String outputName;
    private final long seed;
    private final PooledProjection pooled;
    private final TrainLogger logger;
    private final SdxlPipeline.ModelId model;
    private final boolean vPrediction;
    private final List<String> rounds = new ArrayList<>();
    private final Map<Integer, List<RgbImage>> images = new LinkedHashMap<>();
    private long renderNanos;
    private long filesNanos;

    /**
     * @param prompts    the prompts to render each time
     * @param dir        {@code <output_dir>/sample}
     * @param outputName {@code --output_name} or null
     * @param seed       the run's seed
     * @param pooled     text encoder 2's pooled orientation
     * @param logger     TensorBoard logger, or null
     * @param model      base model (and separate VAE) for the PNG text, or null: none
     * @param vPrediction the model predicts v ({@code --v_parameterization})
     */
    public TrainingSamples(List<SamplePrompt> prompts, Path dir, String outputName, long seed, PooledProjection pooled,
                           TrainLogger logger, SdxlPipeline.ModelId model, boolean vPrediction) {
        this.prompts = List.copyOf(prompts);
        this.dir = dir;
        this.outputName = outputName;
        this.seed = seed;
        this.pooled = pooled;
        this.logger = logger;
        this.model = model;
        this.vPrediction = vPrediction;
    }

    public boolean isEmpty() {
        return prompts.isEmpty();
    }

    /**
     * Renders every prompt.
     *
     * @param label {@code %06d} of the global step, or {@code e%06d} of the epoch
     * @param step  the global step (TensorBoard step)
     * @param now   the timestamp in the file names
     * @return the files written
     */
    public List<Path> render(SdxlModels models, Scope parent, String label, long step, LocalDateTime now)
            throws IOException {
        Files.createDirectories(dir);
        rounds.add(label);
        String stamp = now.format(DateTimeFormatter.ofPattern("yyyyMMddHHmmss"));
        // A new pipeline every round: the text encoders' LoCon changes between rounds, so no text conditioning
        // may be reused from an earlier one. The trainer's LoCon is attached to the models themselves.
        SdxlPipeline pipeline = new SdxlPipeline(models, LoraSet.empty(), PromptEncoder.Options.kohya(pooled),
                Reporter.SILENT, vPrediction);
        List<Path> out = new ArrayList<>();
        for (SamplePrompt p : prompts) {
            long s = p.seed() != null ? p.seed() : Rng.derive(seed, SAMPLE_KEY, step, p.index()).nextLong() & 0xFFFFFFFFL;
            SdxlPipeline.Settings settings = settings(p, models.config());
            int width = settings.width();
            int height = settings.height();
            RgbImage img;
            long t0 = System.nanoTime();
            try (Scope scope = parent.child("sample")) {
                img = pipeline.render(scope, settings, List.of(new SdxlPipeline.Job(s, null))).getFirst().image();
            }
            long t1 = System.nanoTime();
            renderNanos += t1 - t0;
            images.computeIfAbsent(p.index(), k -> new ArrayList<>()).add(img);
            A1111Parameters.Info info = A1111Parameters.Info.basic(p.prompt(), p.negativePrompt(), p.steps(),
                    settings.sampler().kind().a1111Name(), p.scale(), s, width, height).withRng("CPU")
                    .withExtra(Map.of("Training step", Long.toString(step)));
            if (model != null) {
                info = info.withModel(model.hash(), model.name()).withVae(model.vaeHash(), model.vaeName());
            }
            byte[] png = PngFile.encode(img, Map.of("parameters", A1111Parameters.format(info)));
            String name = (outputName == null ? "" : outputName + "_") + label + String.format(Locale.ROOT, "_%02d_", p.index())
                    + stamp + (p.seed() != null ? "_" + p.seed() : "") + ".png";
            Path file = dir.resolve(name);
            AtomicFile.write(file, png);
            out.add(file);
            if (logger != null) {
                logger.sample(String.format(Locale.ROOT, "sample/%02d", p.index()), step, width, height, png);
            }
            filesNanos += System.nanoTime() - t1;
        }
        return out;
    }

    /** Time spent rendering images so far (text encoding, denoising, decoding, until the image is on the host). */
    public long renderNanos() {
        return renderNanos;
    }

    /** Time spent on the rendered images so far: PNG encoding and parameters, the files, TensorBoard. */
    public long filesNanos() {
        return filesNanos;
    }

    /**
     * What the pipeline renders for a prompt, kohya's way (trainer-spec §11): width and height floored to the
     * model's pixel grid (32 on SDXL, at least one cell); classifier-free guidance only when the scale is
     * above 1, otherwise the prompt alone (scale 1, and no negative prompt, so that it cannot lengthen the
     * prompt's context either).
     *
     * @throws InputException for a sampler name or a CFG scale the pipeline does not accept
     */
    public static SdxlPipeline.Settings settings(SamplePrompt p, SdxlConfig config) {
        int multiple = config.vaeScale() * config.latentMultiple();
        int width = Math.max(multiple, p.width() / multiple * multiple);
        int height = Math.max(multiple, p.height() / multiple * multiple);
        boolean guided = p.scale() > 1;
        return new SdxlPipeline.Settings(p.prompt(), guided ? p.negativePrompt() : "", width, height,
                Sampler.Settings.of(SamplerKind.parse(p.sampler()), p.steps()), guided ? p.scale() : 1.0);
    }

    /**
     * Writes the training montage: one row per prompt, one column per sampling round, labelled
     * ({@code <output_dir>/sample/[<output_name>_]montage.png}). Returns null when nothing was sampled.
     *
     * @param reporter gets the grid's warnings (labels in the built-in bitmap font)
     */
    public Path writeMontage(Reporter reporter) throws IOException {
        if (rounds.isEmpty()) {
            return null;
        }
        List<List<RgbImage>> cells = new ArrayList<>();
        List<String> rowLabels = new ArrayList<>();
        for (SamplePrompt p : prompts) {
            cells.add(images.get(p.index()));
            String text = p.prompt().length() > 40 ? p.prompt().substring(0, 37) + "..." : p.prompt();
            rowLabels.add(text);
        }
        List<String> columns = new ArrayList<>();
        for (String r : rounds) {
            columns.add(r.startsWith("e") ? "epoch " + Integer.parseInt(r.substring(1)) : "step " + Long.parseLong(r));
        }
        RgbImage grid = ImageGrid.compose(cells, columns, rowLabels, ImageGrid.Options.DEFAULT, reporter).image();
        Path file = dir.resolve((outputName == null ? "" : outputName + "_") + "montage.png");
        PngFile.write(file, grid, Map.of("Description", "tenmin training montage: rows = sample prompts, columns = "
                + String.join(", ", columns)));
        return file;
    }
}
