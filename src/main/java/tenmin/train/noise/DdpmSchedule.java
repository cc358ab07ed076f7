package tenmin.train.noise;

/**
 * The DDPM training noise schedule of SDXL (trainer-spec §5.1): diffusers {@code DDPMScheduler(0.00085,
 * 0.012, "scaled_linear", 1000)}, computed with PyTorch's float32 operations so that {@code alphas_cumprod}
 * equals diffusers' values bit for bit (fixture {@code schedule.json}):
 * <ul>
 * <li>{@code torch.linspace(√0.00085, √0.012, 1000)} in float32 (see {@link #linspaceF32}), with fused
 *     multiply-adds as ATen's compiled kernel has them;
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
        return scaledLinear(0.00085, 0.012, NUM_TRAIN_TIMESTEPS);
    }

    /** betas = linspace(√betaStart, √betaEnd, n)² in float32. */
    public static DdpmSchedule scaledLinear(double betaStart, double betaEnd, int n) {
        float[] lin = linspaceF32((float) Math.sqrt(betaStart), (float) Math.sqrt(betaEnd), n);
        float[] betas = new float[n];
        for (int i = 0; i < n; i++) {
            betas[i] = lin[i] * lin[i];
        }
        float[] ac = cumprodOfOneMinus(betas);
        return new DdpmSchedule(betas, ac, ac);
    }

    /** {@code torch.cumprod(1 − betas)} in float32 (double accumulation, each prefix rounded). */
    private static float[] cumprodOfOneMinus(float[] betas) {
        float[] ac = new float[betas.length];
        double acc = 1.0;
        for (int i = 0; i < betas.length; i++) {
            acc *= 1f - betas[i];
            ac[i] = (float) acc;
        }
        return ac;
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
        float[] ab = cumprodOfOneMinus(betas);
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
        return new DdpmSchedule(fixedBetas, cumprodOfOneMinus(fixedBetas), snrAlphasCumprod);
    }

    /**
     * {@code torch.linspace(start, end, n, dtype=float32)} on the CPU: ATen fills blocks of two 8-lane vectors,
     * each vector as {@code arange(base, step)} from a base computed at its first index (from {@code start} in
     * the first half, from {@code end} in the second), and the remaining tail element by element.
     */
    static float[] linspaceF32(float start, float end, int n) {
        float[] out = new float[n];
        if (n == 1) {
            out[0] = start;
            return out;
        }
        final int lanes = 8;
        float step = (end - start) / (float) (n - 1);
        int halfway = n / 2;
        int idx = 0;
        while (idx + 2 * lanes <= n) {
            for (int v = 0; v < 2; v++, idx += lanes) {
                float base = linspaceAt(start, end, step, n, halfway, idx);
                for (int j = 0; j < lanes; j++) {
                    out[idx + j] = Math.fma((float) j, step, base);
                }
            }
        }
        for (; idx < n; idx++) {
            out[idx] = linspaceAt(start, end, step, n, halfway, idx);
        }
        return out;
    }

    private static float linspaceAt(float start, float end, float step, int n, int halfway, int i) {
        return i < halfway ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (n - i - 1), end);
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
