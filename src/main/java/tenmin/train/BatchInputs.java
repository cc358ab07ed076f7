package tenmin.train;

import java.util.ArrayList;
import java.util.List;

import tenmin.models.vae.Vae;
import tenmin.train.data.Buckets;
import tenmin.train.data.CaptionOptions;
import tenmin.train.data.Captions;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.data.EpochPlanner;
import tenmin.train.data.SizeConditioning;
import tenmin.train.noise.DdpmSchedule;
import tenmin.train.noise.LossFunction;
import tenmin.train.noise.LossWeighting;
import tenmin.train.noise.NoiseSampler;

/**
 * The host-side inputs of one micro-batch (trainer-spec §2, §3.2, §3.5, §5.2), drawn from the micro-batch's
 * own generator in a fixed order — per image a flip and a caption shuffle (and a seed for an uncached VAE
 * sample), then the noise, its offset and pyramid levels, the timesteps and any input perturbation
 * ({@link NoiseSampler#noised}), then the key of the forward's dropout draws — so any micro-batch can be
 * drawn again identically (resume).
 *
 * @param size      N images (one bucket)
 * @param channels  C latent channels
 * @param height    h latent rows (bucket height / 8)
 * @param width     w latent columns
 * @param noisy     (N, C, h, w) x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·noise (the noise perturbed with --ip_noise_gamma),
 *                  x0 = latents · 0.13025
 * @param noise     (N, C, h, w) the target: ε, or with v-prediction v = √ᾱ_t·ε − √(1−ᾱ_t)·x0
 * @param timesteps (N) uniform in [min_timestep, max_timestep)
 * @param captions  N processed captions
 * @param sizes     N rows (orig_h, orig_w, crop_top, crop_left, target_h, target_w), the crop flip-adjusted
 * @param lossWeights N weights of the images' losses ({@link LossWeighting}), or null: each counts once
 * @param robustLoss the Huber or smooth-L1 loss with its images' thresholds ({@link LossFunction}), or null:
 *                  the squared error
 * @param maxTokenLength caption tokens the text encoders read (75, or 150 / 225 in 75-token windows)
 * @param cachedText the images' text conditioning from {@code --cache_text_encoder_outputs}, or null: the captions
 *                  are encoded
 * @param lossMask  (N, h, w) the images' alpha masks ({@code --alpha_mask}, {@link AlphaMasks}), or null
 * @param randomKey the key of the forward's dropout draws ({@link tenmin.engine.autograd.Randomness}; LoCon dropout),
 *                  drawn last, or null: the forward draws nothing
 */
public record BatchInputs(int size, int channels, int height, int width, float[] noisy, float[] noise, int[] timesteps,
                          List<String> captions, List<int[]> sizes, float[] lossWeights,
                          LossFunction.AtStep robustLoss, int maxTokenLength, TextEncoderCache.Rows cachedText,
                          float[] lossMask, Long randomKey) {

    /** The captions' tokens without {@code --max_token_length}: one window. */
    static final int PLAIN_TOKENS = 75;

    public BatchInputs {
        if (lossWeights != null && lossWeights.length != size) {
            throw new IllegalArgumentException(lossWeights.length + " loss weights for " + size + " images");
        }
    }

    /** Inputs whose images' squared errors count once each (no {@link LossWeighting}). */
    public BatchInputs(int size, int channels, int height, int width, float[] noisy, float[] noise, int[] timesteps,
                       List<String> captions, List<int[]> sizes) {
        this(size, channels, height, width, noisy, noise, timesteps, captions, sizes, null, null, PLAIN_TOKENS, null,
                null, null);
    }

    /** Inputs with the squared error, weighted per image by {@code lossWeights} (null: each counts once). */
    public BatchInputs(int size, int channels, int height, int width, float[] noisy, float[] noise, int[] timesteps,
                       List<String> captions, List<int[]> sizes, float[] lossWeights) {
        this(size, channels, height, width, noisy, noise, timesteps, captions, sizes, lossWeights, null, PLAIN_TOKENS,
                null, null, null);
    }

    /**
     * Draws micro-batch {@code mb}, number {@code index} (0-based) of (0-based) {@code epoch}, with its generator
     * {@code rng} ({@link EpochPlanner#drawRng}); {@code text} is the text-encoder cache and {@code masks} the alpha
     * masks, or null. The captions' token warm-up sees the optimizer steps taken before the micro-batch
     * ({@link EpochPlanner#stepsBefore}) in a run of {@link TrainingData#maxSteps} steps.
     */
    public static BatchInputs draw(TrainConfig cfg, TrainingData data, LatentCache cache, TextEncoderCache text,
                                   AlphaMasks masks, DdpmSchedule schedule, int epoch, int index,
                                   EpochPlanner.MicroBatch mb, Rng rng) {
        TrainConfig.Data d = cfg.data();
        TrainConfig.Loop loop = cfg.loop();
        int n = mb.entries().length;
        Buckets.Reso bucket = data.bucketOf(mb);
        boolean[] flips = EpochPlanner.flips(rng, n, d.flipAug());
        List<String> captions = new ArrayList<>();
        List<int[]> sizes = new ArrayList<>();
        float[][] latents = new float[n][];
        boolean[] reg = new boolean[n];
        long step = data.planner().stepsBefore(epoch, index);
        long maxSteps = data.maxSteps(cfg);
        for (int i = 0; i < n; i++) {
            int item = mb.entries()[i];
            DreamBoothDataset.Item it = data.item(item);
            reg[i] = it.reg();
            CaptionOptions own = data.dataset().subsets().get(it.subset()).captions();
            captions.add(Captions.process(it.caption(), own != null ? own : d.captions(), epoch + 1, step, maxSteps,
                    rng));
            sizes.add(SizeConditioning.of(bucket, it.width(), it.height(), flips[i]).values());
            latents[i] = cache.latents(item, flips[i], rng.nextLong());
        }
        int[] shape = cache.latentShape(bucket);                               // (C, h, w)
        int c = shape[0];
        int h = shape[1];
        int w = shape[2];
        int per = c * h * w;
        float[] x0 = new float[n * per];                                       // (N, C, h, w)
        float scale = (float) Vae.SCALE_FACTOR;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < per; j++) {
                x0[i * per + j] = latents[i][j] * scale;
            }
        }
        LossFunction loss = loop.lossFunction();
        NoiseSampler.Noised drawn = NoiseSampler.noised(rng, x0, n, c, h, w, loop.noise(), loop.minTimestep(),
                loop.maxTimestep(), schedule);                                  // (N, C, h, w)
        float[] target = loop.vPrediction() ? schedule.velocity(x0, drawn.noise(), drawn.timesteps()) : drawn.noise();
        Long randomKey = cfg.network().dropout().any() ? rng.nextLong() : null;   // last: the other draws stay put
        return new BatchInputs(n, c, h, w, drawn.noisy(), target, drawn.timesteps(), List.copyOf(captions),
                List.copyOf(sizes), loop.lossWeighting().weights(schedule, drawn.timesteps(), reg),
                loss.type() == LossFunction.Type.L2 ? null : loss.at(schedule, drawn.timesteps()),
                d.maxTokenLength(), text == null ? null : text.rows(mb.entries()),
                masks == null ? null : masks.batch(mb.entries(), flips), randomKey);
    }
}
