package tenmin.sample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.PyFormat;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.A1111Parameters;
import tenmin.formats.RgbImage;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlModels;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.models.sdxl.Unet;
import tenmin.models.vae.Vae;

/**
 * Text-to-image with an SDXL model and optional LoRAs, on any backend (only the {@code Functional} API):
 *
 * <pre>{@code
 * SdxlPipeline p = new SdxlPipeline(models, loras, PromptEncoder.Options.A1111, reporter);
 * SdxlPipeline.Settings s = new SdxlPipeline.Settings("a cat", "", 1024, 1024, Sampler.Settings.of(EULER_A, 30), 7);
 * List<SdxlPipeline.Image> images = p.render(scope, s, List.of(new SdxlPipeline.Job(42, null)));
 * }</pre>
 *
 * <p>One call renders its jobs (seeds and LoRA multipliers) as one U-Net batch:
 * <ol>
 * <li>text conditioning per job ({@link PromptEncoder}; cached by prompt, negative prompt and text-encoder
 *     LoRA multipliers), size conditioning original = target = (height, width), crop (0, 0), so
 *     {@code y = [pooled, E(h), E(w), E(0), E(0), E(h), E(w)]} (trainer-spec §4.3, §11);
 * <li>initial latents {@code N(0,1)·σ_init} (1, 4, h/8, w/8) per job from PyTorch's CPU generator seeded with
 *     the job's seed ({@link TorchGenerator}, A1111's "RNG: CPU"), ancestral noise from the same generator;
 * <li>the sampler ({@link Sampler}) calls the U-Net once per step on the batch {@code [uncond…, cond…]} and
 *     combines {@code ε = ε_u + cfg·(ε_c − ε_u)} (classifier-free guidance; with cfg = 1 only the conditional
 *     half runs, which gives the same ε);
 * <li>the VAE (fp32) decodes {@code latent / 0.13025}; pixels {@code round(clamp(x/2 + 0.5, 0, 1)·255)}.
 * </ol>
 * The same settings, seed and backend give the same image. Not thread-safe.
 */
public final class SdxlPipeline {
    /** Largest side accepted, in pixels. */
    public static final int MAX_SIDE = 16384;
    private static final int CACHE_ENTRIES = 8;

    /**
     * What to draw.
     *
     * @param prompt         positive prompt (A1111 syntax)
     * @param negativePrompt negative prompt, "" for none
     * @param width          pixels, multiple of 8 and of the model's latent grid ({@link #checkSize})
     * @param height         pixels
     * @param sampler        sampler, steps, schedule
     * @param cfgScale       classifier-free guidance scale (1 = conditional only)
     */
    public record Settings(String prompt, String negativePrompt, int width, int height, Sampler.Settings sampler,
                           double cfgScale) {
        public Settings {
            if (prompt == null || negativePrompt == null) {
                throw new IllegalArgumentException("prompt and negative prompt must not be null (use \"\")");
            }
            if (!(cfgScale >= 0 && cfgScale <= 100)) {
                throw new InputException("CFG scale must be between 0 and 100, got " + cfgScale);
            }
        }
    }

    /**
     * One image of a batch.
     *
     * @param seed        PyTorch CPU generator seed of its noise
     * @param multipliers LoRA multipliers, one per {@link LoraSet#modules()} entry; null = the defaults
     */
    public record Job(long seed, double[] multipliers) {
    }

    /**
     * A rendered image.
     *
     * @param latent (4, h, w) the sampler's final latents (before the VAE scale factor)
     * @param image  the decoded picture
     */
    public record Image(Job job, float[] latent, RgbImage image) {
    }

    /**
     * Wall-clock time of the last {@link #render}, by stage (each stage ends with a host copy, so the device's
     * queued work is included).
     *
     * @param encodeNanos   text conditioning (0 when cached)
     * @param samplingNanos the sampling loop: every U-Net call and the sampler's host arithmetic
     * @param decodeNanos   VAE decoding and conversion to 8-bit
     * @param steps         U-Net calls
     * @param unetBatch     samples per U-Net call (2 per image with guidance)
     * @param unetIssueNanos of the sampling, host time spent issuing U-Net calls (on a GPU the device runs meanwhile)
     * @param unetWaitNanos  of the sampling, host time spent waiting for U-Net results (near 0: the host sets the pace)
     */
    public record Timings(long encodeNanos, long samplingNanos, long decodeNanos, int steps, int unetBatch,
                          long unetIssueNanos, long unetWaitNanos) {
        public long totalNanos() {
            return encodeNanos + samplingNanos + decodeNanos;
        }
    }

    private final SdxlModels models;
    private final LoraSet loras;
    private final PromptEncoder encoder;
    private final Reporter reporter;
    private final boolean vPrediction;
    private Timings lastTimings;
    private boolean profileSampling;
    private final Map<String, PromptEncoder.Pair> cache = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, PromptEncoder.Pair> eldest) {
            return size() > CACHE_ENTRIES;
        }
    };

    public SdxlPipeline(SdxlModels models, LoraSet loras, PromptEncoder.Options options, Reporter reporter) {
        this(models, loras, options, reporter, false);
    }

    /**
     * A pipeline for a model that predicts ε, or with {@code vPrediction} v (v-prediction SDXL models; its output is
     * turned into ε for the samplers, {@link Denoiser#fromVelocity}).
     */
    public SdxlPipeline(SdxlModels models, LoraSet loras, PromptEncoder.Options options, Reporter reporter,
                        boolean vPrediction) {
        this.models = models;
        this.loras = loras == null ? LoraSet.empty() : loras;
        this.encoder = new PromptEncoder(models, options);
        this.reporter = reporter;
        this.vPrediction = vPrediction;
    }

    public SdxlModels models() {
        return models;
    }

    public LoraSet loras() {
        return loras;
    }

    /** Stage times of the last render (null before the first). */
    public Timings lastTimings() {
        return lastTimings;
    }

    /**
     * Makes the next {@link #render}'s sampling loop (its U-Net calls and sampler steps, not the text encoders or
     * the VAE) the region an external CUDA profiler records ({@link tenmin.engine.api.Backend#profilerRegion}).
     */
    public void profileNextSampling() {
        profileSampling = true;
    }

    /**
     * Checks an image size for a model configuration: positive, at most {@link #MAX_SIDE}, a multiple of 8 and
     * of the pixel grid the U-Net needs (VAE factor × 2^(levels−1): 32 on SDXL).
     *
     * @throws InputException naming {@code --width}/{@code --height} and the rule
     */
    public static void checkSize(SdxlConfig config, int width, int height, String where) {
        int grid = config.vaeScale() * config.latentMultiple();
        for (int i = 0; i < 2; i++) {
            String name = i == 0 ? "width" : "height";
            int v = i == 0 ? width : height;
            if (v < 8 || v > MAX_SIDE || v % 8 != 0) {
                throw new InputException(where + name + " " + v + ": must be a multiple of 8 between 8 and " + MAX_SIDE);
            }
            if (v % grid != 0) {
                throw new InputException(where + name + " " + v + ": this model needs a multiple of " + grid
                        + " (the VAE's factor " + config.vaeScale() + " times the U-Net's " + config.latentMultiple()
                        + " for its down-samplings); nearest: " + Math.max(grid, v / grid * grid) + " or "
                        + (v / grid + 1) * grid);
            }
        }
    }

    /**
     * Renders {@code jobs} (at least one) in one U-Net batch and decodes each; images in job order.
     * Reports progress per sampling step.
     */
    public List<Image> render(Scope scope, Settings settings, List<Job> jobs) {
        if (jobs.isEmpty()) {
            throw new IllegalArgumentException("no jobs");
        }
        SdxlConfig cfg = models.config();
        checkSize(cfg, settings.width(), settings.height(), "");
        int h = settings.height() / cfg.vaeScale();
        int w = settings.width() / cfg.vaeScale();
        int c = cfg.latentChannels();
        int jobCount = jobs.size();
        boolean guided = settings.cfgScale() != 1.0;

        long t0 = System.nanoTime();
        double[][] configs = new double[jobCount][];
        List<PromptEncoder.Pair> text = new ArrayList<>();
        for (int j = 0; j < jobCount; j++) {
            configs[j] = jobs.get(j).multipliers() == null ? loras.defaultMultipliers() : jobs.get(j).multipliers();
            text.add(conditioning(scope, settings, configs[j]));
        }
        long[] seeds = new long[jobCount];
        for (int j = 0; j < jobCount; j++) {
            seeds[j] = jobs.get(j).seed();
        }
        long t1 = System.nanoTime();
        int samples = guided ? 2 * jobCount : jobCount;
        float[] latents;
        long issue;
        long wait;
        try (Scope batch = scope.child("sampling batch")) {
            int[] configOfSample = new int[UnetDenoiser.samplesPerCall(text, guided)];
            for (int s = 0; s < configOfSample.length; s++) {
                configOfSample[s] = s % jobCount;
            }
            loras.apply(configs, configOfSample, batch);
            UnetDenoiser denoiser = new UnetDenoiser(models.unet(), batch, text, guided, settings.cfgScale(),
                    new int[] {c, h, w}, conditioningSizes(settings, samples));
            Sampler sampler = Sampler.create(settings.sampler(), NoiseSchedule.sdxl());
            boolean profiled = profileSampling;
            profileSampling = false;
            if (profiled) {
                batch.backend().profilerRegion(true);
            }
            try (Reporter.Progress progress = reporter.progress("sampling", settings.sampler().steps())) {
                Denoiser counted = (x, t) -> {
                    float[] out = denoiser.predictNoise(x, t);
                    progress.advance(1);
                    return out;
                };
                latents = sampleLatents(sampler, seeds, c * h * w,
                        vPrediction ? Denoiser.fromVelocity(counted) : counted);
            }
            if (profiled) {
                batch.backend().profilerRegion(false);
            }
            issue = denoiser.issueNanos();
            wait = denoiser.waitNanos();
        } finally {
            loras.apply(loras.defaultMultipliers());
        }
        long t2 = System.nanoTime();
        List<Image> out = new ArrayList<>();
        int plane = c * h * w;
        for (int j = 0; j < jobCount; j++) {
            float[] latent = Arrays.copyOfRange(latents, j * plane, (j + 1) * plane);
            out.add(new Image(jobs.get(j), latent, decode(scope, latent, c, h, w)));
        }
        lastTimings = new Timings(t1 - t0, t2 - t1, System.nanoTime() - t2, settings.sampler().steps(), samples, issue,
                wait);
        return out;
    }

    /**
     * The sampling loop every render runs: each job's initial latents {@code N(0,1)·σ_init} come from a
     * {@link TorchGenerator} seeded with its seed, the sampler's further noise from the same generator (job by
     * job, so an image does not depend on the others in its batch), then {@link Sampler#run}.
     *
     * @param perJob values per job's latent (C·h·w)
     * @return (jobs, C, h, w) the final latents
     */
    public static float[] sampleLatents(Sampler sampler, long[] seeds, int perJob, Denoiser denoiser) {
        List<TorchGenerator> generators = new ArrayList<>();
        float[] x = new float[seeds.length * perJob];
        for (int j = 0; j < seeds.length; j++) {
            TorchGenerator g = new TorchGenerator(seeds[j]);
            generators.add(g);
            System.arraycopy(sampler.initialLatents(g, perJob), 0, x, j * perJob, perJob);
        }
        GaussianSource perJobNoise = out -> {
            if (out.length != seeds.length * perJob) {
                throw new IllegalStateException("noise for " + out.length + " values, batch has " + x.length);
            }
            for (int j = 0; j < seeds.length; j++) {
                float[] part = generators.get(j).next(perJob);
                System.arraycopy(part, 0, out, j * perJob, perJob);
            }
        };
        return sampler.run(x, denoiser, perJobNoise);
    }

    /** Text conditioning for one job's LoRA configuration (the text-encoder branches matter). */
    private PromptEncoder.Pair conditioning(Scope scope, Settings settings, double[] multipliers) {
        String key = settings.prompt() + '\u0000' + settings.negativePrompt() + '\u0000' + loras.textEncoderKey(multipliers);
        PromptEncoder.Pair pair = cache.get(key);
        if (pair == null) {
            loras.apply(multipliers);
            pair = encoder.encode(scope, settings.prompt(), settings.negativePrompt());
            cache.put(key, pair);
        }
        return pair;
    }

    /** (samples, 6) rows (orig_h, orig_w, crop_top, crop_left, target_h, target_w) = (H, W, 0, 0, H, W). */
    private static List<int[]> conditioningSizes(Settings s, int samples) {
        List<int[]> rows = new ArrayList<>();
        for (int i = 0; i < samples; i++) {
            rows.add(new int[] {s.height(), s.width(), 0, 0, s.height(), s.width()});
        }
        return rows;
    }

    /** VAE decode of one latent (C, h, w) in fp32: {@code decode(latent / 0.13025)} → 8-bit RGB. */
    public RgbImage decode(Scope scope, float[] latent, int c, int h, int w) {
        float[] z = new float[latent.length];
        float scale = (float) Vae.SCALE_FACTOR;
        for (int i = 0; i < z.length; i++) {
            z[i] = latent[i] / scale;
        }
        try (Scope s = scope.child("vae decode")) {
            Tensor decoded = models.vae().decode(s, s.fromHost(z, 1, c, h, w)); // (1, 3, H, W)
            int f = models.config().vaeScale();
            return VaeImages.toRgb(decoded.toHost(), 0, w * f, h * f);
        }
    }

    // ---- image metadata --------------------------------------------------------------------------

    /** The checkpoint as A1111 names it: file name without extension and its short hash (either may be null). */
    public record ModelId(String name, String hash, String vaeName, String vaeHash) {

        /** A model with its own VAE. */
        public ModelId(String name, String hash) {
            this(name, hash, null, null);
        }
    }

    /**
     * The A1111 {@code parameters} text of an image (docs/FORMATS.md): prompt, negative prompt, steps,
     * sampler, schedule type, CFG scale, seed, size, model hash and name, "RNG: CPU" (the initial noise is
     * PyTorch's CPU randn of the seed), LoRA hashes, the LoRA strengths and block vectors, version.
     */
    public static String parameters(Settings s, long seed, ModelId model, List<LoraSet.Prepared> loras,
                                    Map<String, String> extra) {
        A1111Parameters.Info info = A1111Parameters.Info.basic(s.prompt(), s.negativePrompt(), s.sampler().steps(),
                        s.sampler().kind().a1111Name(), s.cfgScale(), seed, s.width(), s.height())
                .withScheduleType(s.sampler().scheduleType().a1111Name())
                .withModel(model.hash(), model.name())
                .withVae(model.vaeHash(), model.vaeName())
                .withRng("CPU");
        List<A1111Parameters.Lora> hashes = new ArrayList<>();
        List<String> weights = new ArrayList<>();
        List<String> vectors = new ArrayList<>();
        for (LoraSet.Prepared p : loras) {
            String name = p.spec().name().replace(":", "").replace(",", "");
            hashes.add(new A1111Parameters.Lora(name, p.hash()));
            weights.add(name + ": " + PyFormat.repr(p.spec().strength()));
            if (p.spec().vector() != null) {
                vectors.add(name + ": " + p.spec().vector());
            }
        }
        Map<String, String> fields = new LinkedHashMap<>();
        if (!weights.isEmpty()) {
            fields.put("Lora weights", String.join(", ", weights));
        }
        if (!vectors.isEmpty()) {
            fields.put("Lora block vectors", String.join("; ", vectors));
        }
        fields.putAll(extra);
        String version = SdxlPipeline.class.getPackage().getImplementationVersion();
        return A1111Parameters.format(info.withLoras(hashes).withExtra(fields)
                .withVersion("tenmin " + (version == null ? "dev" : version)));
    }
}
