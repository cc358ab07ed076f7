package tenmin.train.noise;

import tenmin.sample.NoiseSchedule;

/**
 * The DDPM training noise schedule of SDXL (trainer-spec §5.1): diffusers {@code DDPMScheduler(0.00085,
 * 0.012, "scaled_linear", 1000)}, computed with PyTorch's float32 operations so that {@code alphas_cumprod}
 * equals diffusers' values bit for bit (fixture {@code schedule.json}):
 * <ul>
 * <li>{@code torch.linspace(√0.00085, √0.012, 1000)} in float32 (see {@link NoiseSchedule#scaledLinearBetas}),
 *     with fused multiply-adds as ATen's compiled kernel has them;
 * <li>β = that², α = 1 − β (float32);
 * <li>{@code torch.cumprod} accumulates in double and rounds each prefix to float32.
 * </ul>
 */
public final class DdpmSchedule {
    /** SDXL's training timesteps. */
    public static final int NUM_TRAIN_TIMESTEPS = 1000;
    private final float[] betas;
    private final float[] alphasCumprod;
    /** The ᾱ the loss weightings' SNR is computed from (before a zero-terminal-SNR fix, as the reference). */
    private final float[] snrAlphasCumprod;

    private DdpmSchedule(float[] betas, float[] alphasCumprod, float[] snrAlphasCumprod) {
        this.betas = betas;
        this.alphasCumprod = alphasCumprod;
        this.snrAlphasCumprod = snrAlphasCumprod;
    }

    /** The SDXL schedule: scaled-linear betas from 0.00085 to 0.012 over 1000 steps. */
    public static DdpmSchedule sdxl() {
        return scaledLinear(NoiseSchedule.BETA_START, NoiseSchedule.BETA_END, NUM_TRAIN_TIMESTEPS);
    }

    /** betas = linspace(√betaStart, √betaEnd, n)² in float32 ({@link NoiseSchedule#scaledLinearBetas}). */
    public static DdpmSchedule scaledLinear(double betaStart, double betaEnd, int n) {
        float[] betas = NoiseSchedule.scaledLinearBetas(betaStart, betaEnd, n);
        float[] ac = NoiseSchedule.cumprodOfOneMinus(betas);
        return new DdpmSchedule(betas, ac, ac);
    }

    /**
     * {@code --zero_terminal_snr}: the betas rescaled so that the last timestep carries no signal (Lin et al., "Common
     * Diffusion Noise Schedules and Sample Steps are Flawed", algorithm 1; the reference's
     * {@code fix_noise_scheduler_betas_for_zero_terminal_snr}, float32): √ᾱ shifted so its last value is 0 and scaled
     * so its first is unchanged, betas recomputed from the ratios of consecutive ᾱ. Noise and the velocity target
     * use the new ᾱ; the SNR of the loss weightings stays that of this schedule, as in the reference (it computes
     * its SNR table before the fix).
     */
    public DdpmSchedule withZeroTerminalSnr() {
        int n = betas.length;
        float[] ab = NoiseSchedule.cumprodOfOneMinus(betas);
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            s[i] = (float) Math.sqrt(ab[i]);
        }
        float s0 = s[0];
        float sT = s[n - 1];
        float scale = s0 / (s0 - sT);
        float[] fixedBetas = new float[n];
        float prev = 0;
        for (int i = 0; i < n; i++) {
            float shifted = (s[i] - sT) * scale;
            float bar = shifted * shifted;
            float alpha = i == 0 ? bar : bar / prev;
            fixedBetas[i] = 1f - alpha;
            prev = bar;
        }
        return new DdpmSchedule(fixedBetas, NoiseSchedule.cumprodOfOneMinus(fixedBetas), snrAlphasCumprod);
    }

    /** ᾱ for every timestep (a copy). */
    public float[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    /** ᾱ_t. */
    public float alphaCumprod(int t) {
        return alphasCumprod[t];
    }

    public int numTimesteps() {
        return alphasCumprod.length;
    }

    /**
     * The signal-to-noise ratio of timestep {@code t} as kohya computes it for its loss weightings
     * ({@code prepare_scheduler_for_custom_training}: {@code (√ᾱ / √(1−ᾱ))²}, float32 operations).
     */
    public float snr(int t) {
        float ac = snrAlphasCumprod[t];
        float ratio = (float) Math.sqrt(ac) / (float) Math.sqrt(1f - ac);
        return ratio * ratio;
    }

    /**
     * diffusers {@code get_velocity}, the v-prediction target: {@code v = √ᾱ_t·noise − √(1−ᾱ_t)·x0} per sample,
     * float32 as the reference computes it.
     */
    public float[] velocity(float[] x0, float[] noise, int[] timesteps) {
        float[] v = new float[x0.length];
        combineInto(v, noise, x0, timesteps, true, "get_velocity");
        return v;
    }

    /**
     * diffusers {@code add_noise}: {@code x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·noise} per sample, float32 as the reference
     * computes it (both roots in float32, two products, one sum).
     *
     * @param x0        clean latents, (N, C, H, W) flattened
     * @param noise     the noise, same layout
     * @param timesteps one timestep per sample (N)
     * @param out       destination, same layout (may be {@code x0} or {@code noise})
     */
    public void addNoiseInto(float[] out, float[] x0, float[] noise, int[] timesteps) {
        combineInto(out, x0, noise, timesteps, false, "add_noise");
    }

    /** {@code out = √ᾱ_t·first ± √(1−ᾱ_t)·second} per sample (− with {@code subtract}), float32. */
    private void combineInto(float[] out, float[] first, float[] second, int[] timesteps, boolean subtract,
                             String what) {
        int n = timesteps.length;
        if (first.length != second.length || out.length != first.length || first.length % n != 0) {
            throw new IllegalArgumentException(what + ": sizes " + first.length + ", " + second.length + ", out "
                    + out.length + " for " + n + " samples");
        }
        int per = first.length / n;
        for (int b = 0; b < n; b++) {
            float ac = alphasCumprod[timesteps[b]];
            float a = (float) Math.sqrt(ac);
            float s = (float) Math.sqrt(1f - ac);
            float signed = subtract ? -s : s;
            for (int i = b * per; i < (b + 1) * per; i++) {
                out[i] = a * first[i] + signed * second[i];
            }
        }
    }
}
