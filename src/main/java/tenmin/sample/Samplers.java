package tenmin.sample;

/**
 * The sampler implementations. Each has its step as a static method that tests can call with stored
 * inputs, and a loop ({@link Sampler#run}) that calls it. Elementwise arithmetic is float32 in the order
 * PyTorch evaluates the reference expressions, so one step reproduces the reference to float rounding.
 *
 * <p>Notation: x latents, ε predicted noise, σ_i the schedule, x0 = x − σ·ε the predicted clean latents
 * (k-diffusion's "denoised"); the model sees {@code x/sqrt(σ²+1)} (diffusers {@code scale_model_input}).
 */
public final class Samplers {
    private Samplers() {
    }

    /** The ᾱ of noise level σ: {@code 1 / (σ² + 1)} (what a v-prediction model's output is converted with). */
    static double alphaCumprodOf(double sigma) {
        return 1 / (sigma * sigma + 1);
    }

    /** diffusers {@code scale_model_input}: {@code x / sqrt(σ² + 1)} (new array). */
    public static float[] scaleModelInput(float[] x, float sigma) {
        float denom = (float) Math.sqrt(sigma * sigma + 1f);
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] / denom;
        }
        return out;
    }

    private static void checkSameLength(float[] x, float[] other, String what) {
        if (other.length != x.length) {
            throw new IllegalArgumentException(what + " has " + other.length + " values, latents " + x.length);
        }
    }

    /** What the samplers that walk down a {@link SigmaSchedule} share. */
    public abstract static sealed class SigmaSampler implements Sampler permits EulerAncestral, Euler, DpmPp2m {
        private final SamplerKind kind;
        final SigmaSchedule schedule;

        SigmaSampler(SamplerKind kind, SigmaSchedule schedule) {
            this.kind = kind;
            this.schedule = schedule;
        }

        @Override
        public SamplerKind kind() {
            return kind;
        }

        @Override
        public SigmaSchedule schedule() {
            return schedule;
        }

        @Override
        public float initNoiseSigma() {
            return schedule.initNoiseSigma();
        }
    }

    /** Runs a σ-based first-order loop shared by Euler and Euler ancestral. */
    private interface SigmaStep {
        float[] step(float[] x, float[] eps, int i);
    }

    private static float[] runSigmaLoop(SigmaSchedule s, float[] x0, Denoiser model, SigmaStep step) {
        float[] x = x0.clone();
        for (int i = 0; i < s.steps(); i++) {
            float sigma = s.sigma(i);
            float[] eps = model.predictNoise(scaleModelInput(x, sigma), s.timestep(i), alphaCumprodOf(sigma));
            checkSameLength(x, eps, "denoiser output");
            x = step.step(x, eps, i);
        }
        return x;
    }

    /**
     * Euler ancestral exactly as diffusers 0.25 {@code EulerAncestralDiscreteScheduler.step} (trainer-spec §11):
     * <pre>
     * x0 = x − σ·ε;  σ_up = sqrt(σ_next²·(σ² − σ_next²)/σ²);  σ_down = sqrt(σ_next² − σ_up²)
     * x' = x + (x − x0)/σ · (σ_down − σ) + noise·σ_up
     * </pre>
     * Noise is drawn at every step, the last one included (σ_up = 0 there), as diffusers draws it.
     */
    public static final class EulerAncestral extends SigmaSampler {
        EulerAncestral(SigmaSchedule schedule) {
            super(SamplerKind.EULER_A, schedule);
        }

        /** One step from σ to σ_next with the given ε and N(0,1) noise (new array). */
        public static float[] step(float[] x, float[] eps, float sigma, float sigmaNext, float[] noise) {
            checkSameLength(x, eps, "eps");
            checkSameLength(x, noise, "noise");
            float sigmaUp = (float) Math.sqrt(sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext) / (sigma * sigma));
            float sigmaDown = (float) Math.sqrt(sigmaNext * sigmaNext - sigmaUp * sigmaUp);
            float dt = sigmaDown - sigma;
            float[] out = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                float pred = x[i] - sigma * eps[i];
                float derivative = (x[i] - pred) / sigma;
                float prev = x[i] + derivative * dt;
                out[i] = prev + noise[i] * sigmaUp;
            }
            return out;
        }

        @Override
        public float[] run(float[] x, Denoiser model, GaussianSource noise) {
            SigmaSchedule s = schedule;
            return runSigmaLoop(s, x, model, (xi, eps, i) -> step(xi, eps, s.sigma(i), s.sigma(i + 1), noise.next(xi.length)));
        }
    }

    /**
     * Euler (diffusers {@code EulerDiscreteScheduler} without churn, k-diffusion {@code sample_euler}):
     * {@code x' = x + (x − x0)/σ · (σ_next − σ)}.
     */
    public static final class Euler extends SigmaSampler {
        Euler(SigmaSchedule schedule) {
            super(SamplerKind.EULER, schedule);
        }

        /** One Euler step (new array). */
        public static float[] step(float[] x, float[] eps, float sigma, float sigmaNext) {
            checkSameLength(x, eps, "eps");
            float dt = sigmaNext - sigma;
            float[] out = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                float pred = x[i] - sigma * eps[i];
                float derivative = (x[i] - pred) / sigma;
                out[i] = x[i] + derivative * dt;
            }
            return out;
        }

        @Override
        public float[] run(float[] x, Denoiser model, GaussianSource noise) {
            SigmaSchedule s = schedule;
            return runSigmaLoop(s, x, model, (xi, eps, i) -> step(xi, eps, s.sigma(i), s.sigma(i + 1)));
        }
    }

    /**
     * DPM++ 2M as k-diffusion's {@code sample_dpmpp_2m} (Lu et al. 2022, DPM-Solver++(2M)): with
     * λ = −log σ, h = λ_next − λ,
     * <pre>
     * first step, and the last (σ_next = 0):  x' = (σ_next/σ)·x − expm1(−h)·D
     * otherwise, r = h_prev/h:                 x' = (σ_next/σ)·x − expm1(−h)·((1 + 1/(2r))·D − 1/(2r)·D_prev)
     * </pre>
     * where D = x − σ·ε is the denoised estimate (the last step returns D itself).
     */
    public static final class DpmPp2m extends SigmaSampler {
        DpmPp2m(SigmaSchedule schedule) {
            super(SamplerKind.DPMPP_2M, schedule);
        }

        /**
         * One step; {@code denoisedPrev} null for the first order update.
         *
         * @param sigmaPrev σ of the previous step (ignored when {@code denoisedPrev} is null)
         */
        public static float[] step(float[] x, float[] denoised, float[] denoisedPrev, float sigmaPrev, float sigma,
                                   float sigmaNext) {
            checkSameLength(x, denoised, "denoised");
            float[] out = new float[x.length];
            if (sigmaNext == 0) {
                System.arraycopy(denoised, 0, out, 0, x.length);
                return out;
            }
            double t = -Math.log(sigma);
            double tNext = -Math.log(sigmaNext);
            double h = tNext - t;
            float ratio = (float) (sigmaNext / (double) sigma);
            float c = (float) -Math.expm1(-h);
            if (denoisedPrev == null) {
                for (int i = 0; i < x.length; i++) {
                    out[i] = ratio * x[i] + c * denoised[i];
                }
                return out;
            }
            checkSameLength(x, denoisedPrev, "previous denoised");
            double hLast = t - (-Math.log(sigmaPrev));
            double r = hLast / h;
            float a = (float) (1 + 1 / (2 * r));
            float b = (float) (1 / (2 * r));
            for (int i = 0; i < x.length; i++) {
                float d = a * denoised[i] - b * denoisedPrev[i];
                out[i] = ratio * x[i] + c * d;
            }
            return out;
        }

        /** k-diffusion's denoised estimate {@code x − σ·ε} (new array). */
        public static float[] denoised(float[] x, float[] eps, float sigma) {
            checkSameLength(x, eps, "eps");
            float[] out = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                out[i] = x[i] - sigma * eps[i];
            }
            return out;
        }

        @Override
        public float[] run(float[] x0, Denoiser model, GaussianSource noise) {
            SigmaSchedule s = schedule;
            float[] x = x0.clone();
            float[] prev = null;
            for (int i = 0; i < s.steps(); i++) {
                float sigma = s.sigma(i);
                float[] eps = model.predictNoise(scaleModelInput(x, sigma), s.timestep(i), alphaCumprodOf(sigma));
                float[] d = denoised(x, eps, sigma);
                x = step(x, d, prev, i > 0 ? s.sigma(i - 1) : 0f, sigma, s.sigma(i + 1));
                prev = d;
            }
            return x;
        }
    }

    /**
     * DDIM as diffusers 0.25 {@code DDIMScheduler} with the settings kohya's sample images use:
     * "leading" timesteps {@code t_i = (n−1−i)·⌊1000/n⌋}, {@code set_alpha_to_one=True} (ᾱ = 1 after the
     * last step), model input not scaled, N(0,1) start:
     * <pre>
     * x0 = (x − sqrt(1−ᾱ_t)·ε)/sqrt(ᾱ_t)          (optionally clamped to [−1, 1])
     * σ_η = η·sqrt((1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev))
     * x' = sqrt(ᾱ_prev)·x0 + sqrt(1 − ᾱ_prev − σ_η²)·ε + σ_η·noise
     * </pre>
     */
    public static final class Ddim implements Sampler {
        private final NoiseSchedule noise;
        private final int[] timesteps;
        private final int stepRatio;
        private final double eta;
        private final boolean clipSample;

        Ddim(NoiseSchedule noise, int steps, double eta, boolean clipSample) {
            this.noise = noise;
            this.stepRatio = NoiseSchedule.TRAIN_TIMESTEPS / steps;
            this.timesteps = new int[steps];
            for (int i = 0; i < steps; i++) {
                timesteps[i] = (steps - 1 - i) * stepRatio;
            }
            this.eta = eta;
            this.clipSample = clipSample;
        }

        /** The integer timesteps, first to last. */
        public int[] timesteps() {
            return timesteps.clone();
        }

        /** ᾱ after timestep t: ᾱ[t − ⌊1000/n⌋], or 1 past the start. */
        private float alphaPrev(int t) {
            int prev = t - stepRatio;
            return prev >= 0 ? noise.alphaCumprod(prev) : 1f;
        }

        /**
         * One DDIM step from timestep {@code t} to the ᾱ {@code alphaPrev} (new array).
         *
         * @param noise N(0, 1) noise when η > 0; null for η = 0
         */
        public static float[] step(float[] x, float[] eps, float alphaT, float alphaPrev, double eta, boolean clip,
                                   float[] noise) {
            checkSameLength(x, eps, "eps");
            float betaT = 1f - alphaT;
            float sqrtBetaT = (float) Math.sqrt(betaT);
            float sqrtAlphaT = (float) Math.sqrt(alphaT);
            float sqrtAlphaPrev = (float) Math.sqrt(alphaPrev);
            float variance = ((1f - alphaPrev) / betaT) * (1f - alphaT / alphaPrev);
            float std = (float) (eta * Math.sqrt(variance));
            float dirCoef = (float) Math.sqrt(1f - alphaPrev - std * std);
            float[] out = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                float x0 = (x[i] - sqrtBetaT * eps[i]) / sqrtAlphaT;
                if (clip) {
                    x0 = Math.max(-1f, Math.min(1f, x0));
                }
                float v = sqrtAlphaPrev * x0 + dirCoef * eps[i];
                out[i] = noise == null ? v : v + std * noise[i];
            }
            return out;
        }

        @Override
        public float[] run(float[] x0, Denoiser model, GaussianSource gaussian) {
            float[] x = x0.clone();
            for (int t : timesteps) {
                float[] eps = model.predictNoise(x.clone(), t, noise.alphaCumprod(t));
                checkSameLength(x, eps, "denoiser output");
                float alphaT = noise.alphaCumprod(t);
                float alphaPrev = alphaPrev(t);
                float[] stepNoise = eta > 0 ? gaussian.next(x.length) : null;
                x = step(x, eps, alphaT, alphaPrev, eta, clipSample, stepNoise);
            }
            return x;
        }

        @Override
        public SamplerKind kind() {
            return SamplerKind.DDIM;
        }

        @Override
        public SigmaSchedule schedule() {
            double[] t = new double[timesteps.length];
            float[] s = new float[timesteps.length + 1];
            for (int i = 0; i < timesteps.length; i++) {
                t[i] = timesteps[i];
                float a = noise.alphaCumprod(timesteps[i]);
                s[i] = (float) Math.sqrt((1f - a) / a);
            }
            return new SigmaSchedule(t, s);
        }

        @Override
        public float initNoiseSigma() {
            return 1f;
        }
    }
}
