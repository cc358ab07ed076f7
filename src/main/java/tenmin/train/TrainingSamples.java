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

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.A1111Parameters;
import tenmin.formats.AtomicFile;
import tenmin.formats.PngFile;
import tenmin.formats.RgbImage;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.clip.ClipTokenizer;
import tenmin.models.clip.SdxlTextEncoders;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.models.vae.Vae;
import tenmin.sample.Denoiser;
import tenmin.sample.ImageGrid;
import tenmin.sample.NoiseSchedule;
import tenmin.sample.PromptChunks;
import tenmin.sample.PromptFile.SamplePrompt;
import tenmin.sample.Sampler;
import tenmin.sample.SamplerKind;
import tenmin.sample.TorchGenerator;
import tenmin.sample.VaeImages;
import tenmin.train.log.TrainLogger;

/**
 * Sample images during training (trainer-spec §11): every prompt of the sample file rendered with the live,
 * LoRA-patched models (no gradients), Euler a by default, classifier-free guidance with the negative prompt
 * when the scale is above 1, decoded by the fp32 VAE, written as
 * {@code <output_dir>/sample/[<output_name>_]<step %06d>_<prompt %02d>_<YYYYmmddHHMMSS>[_<seed>].png} with
 * A1111's {@code parameters} text, and logged as TensorBoard image summaries. At the end
 * {@link #writeMontage} puts every sampling round side by side: one row per prompt, one column per step.
 *
 * <p>Prompts are encoded as kohya's long-prompt pipeline does: A1111 weighting syntax, up to three 75-token
 * chunks per encoder, hidden states of the chunks concatenated, pooled vector from the first chunk; token
 * weights multiply the context, which is then rescaled to keep its mean. Size conditioning: original =
 * target = (height, width), crop (0, 0). A prompt without {@code --d} gets a seed derived from the run's
 * seed, the step and its index (recorded in the PNG), so a run is reproducible.
 */
public final class TrainingSamples {
    private static final long SAMPLE_KEY = 0x53414D504C45L; // "SAMPLE"

    private final List<SamplePrompt> prompts;
    private final Path dir;
    private final String outputName;
    private final long seed;
    private final PooledProjection pooled;
    private final TrainLogger logger;
    private final String modelName;
    private final String modelHash;
    private final List<String> rounds = new ArrayList<>();
    private final Map<Integer, List<RgbImage>> images = new LinkedHashMap<>();

    /**
     * @param prompts    the prompts to render each time
     * @param dir        {@code <output_dir>/sample}
     * @param outputName {@code --output_name} or null
     * @param seed       the run's seed
     * @param pooled     text encoder 2's pooled orientation
     * @param logger     TensorBoard logger, or null
     * @param modelName  base model name for the PNG text (null: none)
     * @param modelHash  A1111's short model hash (null: none)
     */
    public TrainingSamples(List<SamplePrompt> prompts, Path dir, String outputName, long seed, PooledProjection pooled,
                           TrainLogger logger, String modelName, String modelHash) {
        this.prompts = List.copyOf(prompts);
        this.dir = dir;
        this.outputName = outputName;
        this.seed = seed;
        this.pooled = pooled;
        this.logger = logger;
        this.modelName = modelName;
        this.modelHash = modelHash;
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
        List<Path> out = new ArrayList<>();
        for (SamplePrompt p : prompts) {
            long s = p.seed() != null ? p.seed() : Rng.derive(seed, SAMPLE_KEY, step, p.index()).nextLong() & 0xFFFFFFFFL;
            int multiple = models.config().vaeScale() * models.config().latentMultiple();
            int width = Math.max(multiple, p.width() / multiple * multiple);
            int height = Math.max(multiple, p.height() / multiple * multiple);
            RgbImage img = renderOne(models, parent, p, s, width, height);
            images.computeIfAbsent(p.index(), k -> new ArrayList<>()).add(img);
            SamplerKind kind = SamplerKind.parse(p.sampler());
            A1111Parameters.Info info = A1111Parameters.Info.basic(p.prompt(), p.negativePrompt(), p.steps(),
                    kind.a1111Name(), p.scale(), s, width, height).withRng("CPU")
                    .withExtra(Map.of("Training step", Long.toString(step)));
            if (modelName != null) {
                info = info.withModel(modelHash, modelName);
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
        }
        return out;
    }

    private RgbImage renderOne(SdxlModels models, Scope parent, SamplePrompt p, long seed, int width, int height) {
        int lh = height / models.config().vaeScale();
        int lw = width / models.config().vaeScale();
        int c = models.config().latentChannels();
        boolean guided = p.scale() > 1;
        Sampler sampler = Sampler.create(Sampler.Settings.of(SamplerKind.parse(p.sampler()), p.steps()), NoiseSchedule.sdxl());
        TorchGenerator gen = new TorchGenerator(seed);
        float[] x = sampler.initialLatents(gen, c * lh * lw);                               // (1, C, h, w)
        try (Scope s = parent.child("sample")) {
            Functional f = Functional.inference(s);
            int[] size = {height, width, 0, 0, height, width};                               // original = target, no crop
            PromptChunks.Result condChunks = PromptChunks.of(p.prompt(), models.tokenizer(), PromptChunks.Chunking.KOHYA);
            PromptChunks.Result uncondChunks = PromptChunks.of(p.negativePrompt(), models.tokenizer(),
                    PromptChunks.Chunking.KOHYA);
            int chunks = guided ? Math.max(condChunks.chunks().size(), uncondChunks.chunks().size())
                    : condChunks.chunks().size();
            Prompt cond = encode(f, models, condChunks.padTo(chunks), size);
            Prompt both = cond;
            if (guided) {
                Prompt uncond = encode(f, models, uncondChunks.padTo(chunks), size);
                both = new Prompt(f.cat(0, uncond.context, cond.context), f.cat(0, uncond.y, cond.y)); // (2, T, D), (2, A)
            }
            Prompt conditioning = both;
            int batch = guided ? 2 : 1;
            Denoiser denoiser = (input, timestep) -> {
                try (Scope step = s.child("denoise")) {
                    Functional g = Functional.inference(step);
                    float[] in = guided ? concat(input, input) : input;
                    Tensor xt = step.fromHost(in, Shape.of(batch, c, lh, lw), DType.F32);
                    float[] tv = new float[batch];
                    java.util.Arrays.fill(tv, (float) timestep);
                    Tensor ts = step.fromHost(tv, batch);
                    float[] eps = models.unet().forward(g, xt, ts, conditioning.context, conditioning.y).toHost();
                    return guided ? guide(eps, p.scale()) : eps;
                }
            };
            float[] z = sampler.run(x, denoiser, gen);                                           // (1, C, h, w)
            float[] unscaled = new float[z.length];
            for (int i = 0; i < z.length; i++) {
                unscaled[i] = (float) (z[i] / Vae.SCALE_FACTOR);
            }
            Tensor latent = s.fromHost(unscaled, Shape.of(1, c, lh, lw), models.dtypes().vae());
            float[] decoded = models.vae().decode(s, latent).toHost();                          // (1, 3, H, W)
            return VaeImages.toRgb(decoded, 0, width, height);
        }
    }

    /** One side of the guidance batch: context (1, 77·chunks, D) and y (1, A). */
    private record Prompt(Tensor context, Tensor y) {
    }

    /**
     * kohya's long-prompt encoding: chunks of 75 tokens (at most 3), each through both encoders, states
     * concatenated along the tokens; the context is multiplied by the token weights and rescaled to its
     * previous mean when any weight differs from 1.
     */
    private Prompt encode(Functional f, SdxlModels models, List<PromptChunks.Chunk> chunks, int[] size) {
        List<Tensor> contexts = new ArrayList<>();
        Tensor pooledVector = null;
        float[] weights = new float[chunks.size() * ClipTokenizer.CONTEXT_LENGTH];
        boolean weighted = false;
        for (int i = 0; i < chunks.size(); i++) {
            PromptChunks.Chunk chunk = chunks.get(i);
            Tensor ids1 = SdxlTextEncoders.ids(f.scope(), List.of(chunk.ids(ClipTokenizer.PAD_TE1)));
            Tensor ids2 = SdxlTextEncoders.ids(f.scope(), List.of(chunk.ids(ClipTokenizer.PAD_TE2)));
            SdxlTextEncoders.Conditioning c = models.textEncoders().encode(f, ids1, ids2,
                    new SdxlTextEncoders.Options(pooled, false));
            contexts.add(c.context());                                                          // (1, 77, D)
            if (i == 0) {
                pooledVector = c.pooled();                                                       // (1, P)
            }
            System.arraycopy(chunk.multipliers(), 0, weights, i * ClipTokenizer.CONTEXT_LENGTH, ClipTokenizer.CONTEXT_LENGTH);
            weighted |= !chunk.unweighted();
        }
        Tensor context = f.cat(contexts, 1);                                                    // (1, T, D)
        if (weighted) {
            Tensor before = f.mean(f.cast(context, DType.F32));
            Tensor w = f.cast(f.scope().fromHost(weights, 1, weights.length, 1), context.dtype());
            context = f.mul(context, w);
            Tensor after = f.mean(f.cast(context, DType.F32));
            context = f.mul(context, f.cast(f.div(before, after), context.dtype()));
        }
        Tensor y = SdxlConditioning.vector(f, pooledVector, SdxlConditioning.sizeTensor(f.scope(), List.of(size)));
        return new Prompt(context, y);
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** {@code ε = ε_u + scale·(ε_c − ε_u)} from the batch [uncond, cond]. */
    private static float[] guide(float[] eps, double scale) {
        int n = eps.length / 2;
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (eps[i] + scale * (eps[n + i] - eps[i]));
        }
        return out;
    }

    /**
     * Writes the training montage: one row per prompt, one column per sampling round, labelled
     * ({@code <output_dir>/sample/[<output_name>_]montage.png}). Returns null when nothing was sampled.
     */
    public Path writeMontage() throws IOException {
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
        RgbImage grid = ImageGrid.compose(cells, columns, rowLabels, ImageGrid.Options.DEFAULT).image();
        Path file = dir.resolve((outputName == null ? "" : outputName + "_") + "montage.png");
        PngFile.write(file, grid, Map.of("Description", "tenmin training montage: rows = sample prompts, columns = "
                + String.join(", ", columns)));
        return file;
    }
}
