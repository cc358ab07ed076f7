package tenmin.sample;

/**
 * The DDPM noise schedule SDXL was trained with, and the sigma sequences samplers walk down.
 *
 * <p>{@code betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)²}, {@code ᾱ = cumprod(1 − β)} computed as
 * diffusers' {@code DDPMScheduler(beta_schedule="scaled_linear")} does in PyTorch (trainer-spec §5.1,
 * fixture {@code schedule.json ddpm.alphas_cumprod}). In the "variance exploding" view of k-diffusion a
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
        return scaledLinear(BETA_START, BETA_END, TRAIN_TIMESTEPS);
    }

    /**
     * A scaled-linear schedule as PyTorch computes it on the CPU: {@code linspace} in float32 from both ends
     * towards the middle, squared, {@code 1 − β} in float32, and {@code cumprod} accumulated in double (ATen's
     * CPU accumulation type) and stored as float32. PyTorch's vectorised linspace rounds some betas one ulp
     * differently (fused multiply-add), which moves ᾱ by up to 2e-7.
     */
    public static NoiseSchedule scaledLinear(double betaStart, double betaEnd, int timesteps) {
        float start = (float) Math.sqrt(betaStart);
        float end = (float) Math.sqrt(betaEnd);
        float step = (end - start) / (timesteps - 1);
        int halfway = timesteps / 2;
        float[] ac = new float[timesteps];
        double prod = 1;
        for (int i = 0; i < timesteps; i++) {
            float s = i < halfway ? start + step * i : end - step * (timesteps - i - 1);
            float alpha = 1f - s * s;
            prod *= alpha;
            ac[i] = (float) prod;
        }
        return new NoiseSchedule(ac);
    }

    /** ᾱ_t, t = 0..999 (a copy). */
    public float[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    /** ᾱ at an integer timestep. */
    public float alphaCumprod(int t) {
        return alphasCumprod[t];
    }

    /**
     * The forward process at an integer timestep, diffusers' {@code add_noise}:
     * {@code x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·noise} (new array).
     */
    public float[] addNoise(float[] x0, float[] noise, int t) {
        if (noise.length != x0.length) {
            throw new IllegalArgumentException("noise has " + noise.length + " values, latents " + x0.length);
        }
        float a = alphasCumprod[t];
        float sqrtA = (float) Math.sqrt(a);
        float sqrtOneMinusA = (float) Math.sqrt(1f - a);
        float[] out = new float[x0.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = sqrtA * x0[i] + sqrtOneMinusA * noise[i];
        }
        return out;
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
