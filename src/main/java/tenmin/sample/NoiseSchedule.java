package tenmin.sample;

/**
 * The DDPM noise schedule SDXL was trained with, and the sigma sequences samplers walk down.
 *
 * <p>{@code betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)²}, {@code ᾱ = cumprod(1 − β)} computed as
 * diffusers' {@code DDPMScheduler(beta_schedule="scaled_linear")} does in PyTorch (trainer-spec §5.1,
 * fixture {@code schedule.json ddpm.alphas_cumprod}), bit for bit; training's {@code DdpmSchedule} takes its betas
 * and ᾱ from here too. In the "variance exploding" view of k-diffusion a
 * noisy latent is {@code x = x0 + σ·ε} with {@code σ(t) = sqrt((1 − ᾱ_t)/ᾱ_t)}; the U-Net sees
 * {@code x/sqrt(σ²+1)} and the timestep t.
 *
 * <p>Immutable.
 */
public final class NoiseSchedule {
    /** Training timesteps. */
    public static final int TRAIN_TIMESTEPS = 1000;
    public static final double BETA_START = 0.00085;
    public static final double BETA_END = 0.012;

    private final float[] alphasCumprod; // (1000)
    private final float[] sigmas;        // (1000) sqrt((1-ᾱ)/ᾱ), float32 as torch computes it
    private final double[] logSigmas;    // (1000) log of the above, k-diffusion's interpolation grid

    private NoiseSchedule(float[] alphasCumprod) {
        this.alphasCumprod = alphasCumprod;
        int n = alphasCumprod.length;
        this.sigmas = new float[n];
        this.logSigmas = new double[n];
        for (int i = 0; i < n; i++) {
            float a = alphasCumprod[i];
            float ratio = (1f - a) / a;
            sigmas[i] = (float) Math.sqrt(ratio);
            logSigmas[i] = Math.log(sigmas[i]);
        }
    }

    /** SDXL's schedule: scaled-linear betas 0.00085 → 0.012 over 1000 steps. */
    public static NoiseSchedule sdxl() {
        return new NoiseSchedule(cumprodOfOneMinus(scaledLinearBetas(BETA_START, BETA_END, TRAIN_TIMESTEPS)));
    }

    /**
     * {@code torch.linspace(√betaStart, √betaEnd, n, dtype=float32)²}: the scaled-linear betas as diffusers computes
     * them in PyTorch on the CPU, so that training's and sampling's ᾱ equal diffusers' bit for bit (fixture
     * {@code schedule.json}); see {@link #linspaceF32}.
     */
    public static float[] scaledLinearBetas(double betaStart, double betaEnd, int n) {
        float[] lin = linspaceF32((float) Math.sqrt(betaStart), (float) Math.sqrt(betaEnd), n);
        float[] betas = new float[n];
        for (int i = 0; i < n; i++) {
            betas[i] = lin[i] * lin[i];
        }
        return betas;
    }

    /** {@code torch.cumprod(1 − betas)} in float32: α = 1 − β in float32, accumulated in double, each prefix rounded. */
    public static float[] cumprodOfOneMinus(float[] betas) {
        float[] ac = new float[betas.length];
        double acc = 1.0;
        for (int i = 0; i < betas.length; i++) {
            acc *= 1f - betas[i];
            ac[i] = (float) acc;
        }
        return ac;
    }

    /**
     * {@code torch.linspace(start, end, n, dtype=float32)} on the CPU: ATen fills blocks of two 8-lane vectors,
     * each vector as {@code arange(base, step)} from a base computed at its first index (from {@code start} in
     * the first half, from {@code end} in the second), with fused multiply-adds as its compiled kernel has them,
     * and the remaining tail element by element.
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

    /** ᾱ_t, t = 0..999 (a copy). */
    public float[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    /** ᾱ at an integer timestep. */
    public float alphaCumprod(int t) {
        return alphasCumprod[t];
    }

    /** σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) at the 1000 training timesteps (a copy). */
    public float[] trainSigmas() {
        return sigmas.clone();
    }

    /** Smallest training sigma (t = 0), k-diffusion's {@code sigma_min}. */
    public float sigmaMin() {
        return sigmas[0];
    }

    /** Largest training sigma (t = 999), k-diffusion's {@code sigma_max}. */
    public float sigmaMax() {
        return sigmas[sigmas.length - 1];
    }

    /**
     * diffusers' sigma at a fractional timestep: linear interpolation of σ between the integer timesteps
     * ({@code np.interp(t, arange(1000), sigmas)}).
     */
    public double sigmaAtLinear(double t) {
        int last = sigmas.length - 1;
        if (t <= 0) {
            return sigmas[0];
        }
        if (t >= last) {
            return sigmas[last];
        }
        int j = (int) Math.floor(t);
        double slope = ((double) sigmas[j + 1] - sigmas[j]);
        return slope * (t - j) + sigmas[j];
    }

    /**
     * k-diffusion's {@code DiscreteSchedule.sigma_to_t}: the fractional timestep whose log-sigma,
     * interpolated linearly between the two neighbouring training timesteps, equals log σ.
     */
    public double sigmaToT(double sigma) {
        double logSigma = Math.log(sigma);
        int n = logSigmas.length;
        // low = last index with log_sigmas[i] <= log σ, at most n - 2
        int low = 0;
        for (int i = 0; i < n; i++) {
            if (logSigma - logSigmas[i] >= 0) {
                low = i;
            }
        }
        low = Math.min(low, n - 2);
        double lo = logSigmas[low];
        double hi = logSigmas[low + 1];
        double w = (lo - logSigma) / (lo - hi);
        w = Math.max(0, Math.min(1, w));
        return (1 - w) * low + w * (low + 1);
    }

    /** k-diffusion's {@code t_to_sigma}: exp of the log-sigma interpolated at a fractional timestep. */
    public double tToSigma(double t) {
        int low = (int) Math.floor(t);
        int high = (int) Math.ceil(t);
        double w = t - low;
        return Math.exp((1 - w) * logSigmas[low] + w * logSigmas[high]);
    }
}
