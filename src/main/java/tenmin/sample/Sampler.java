package tenmin.sample;

import tenmin.core.InputException;

/**
 * A sampling loop on host latents: starting from scaled noise it calls the {@link Denoiser} once per step
 * and returns the denoised latents (N, C, H, W), ready for the VAE (after dividing by its scale factor).
 *
 * <p>Typical use: {@code Sampler s = Sampler.create(settings, NoiseSchedule.sdxl());
 * float[] x = s.initialLatents(new TorchGenerator(seed), n); float[] z = s.run(x, model, generator);}
 */
public sealed interface Sampler permits Samplers.SigmaSampler, Samplers.Ddim {

    /**
     * What to sample with.
     *
     * @param kind the sampler
     * @param steps number of denoiser calls, 1..1000
     * @param scheduleType NORMAL or KARRAS (not for DDIM)
     * @param eta DDIM's η (0 = deterministic); must be 0 for the other samplers
     * @param clipSample DDIM only: clamp the predicted x0 to [-1, 1], which kohya's sample images switch on
     */
    record Settings(SamplerKind kind, int steps, ScheduleType scheduleType, double eta, boolean clipSample) {
        public Settings {
            if (steps < 1 || steps > NoiseSchedule.TRAIN_TIMESTEPS) {
                throw new InputException("steps must be between 1 and " + NoiseSchedule.TRAIN_TIMESTEPS + ", got " + steps);
            }
            if (kind == SamplerKind.DDIM && scheduleType == ScheduleType.KARRAS) {
                throw new InputException("DDIM has no Karras schedule; use --schedule normal or another sampler");
            }
            if (!(eta >= 0 && eta <= 1)) {
                throw new InputException("eta must be between 0 and 1, got " + eta);
            }
            if (eta != 0 && kind != SamplerKind.DDIM) {
                throw new InputException("eta applies to DDIM only, not to " + kind.a1111Name());
            }
            if (clipSample && kind != SamplerKind.DDIM) {
                throw new InputException("clip-sample applies to DDIM only, not to " + kind.a1111Name());
            }
        }

        /** A sampler with the normal schedule and no DDIM options. */
        public static Settings of(SamplerKind kind, int steps) {
            return new Settings(kind, steps, ScheduleType.NORMAL, 0, false);
        }

        /** A sampler and schedule type with no DDIM options. */
        public static Settings of(SamplerKind kind, int steps, ScheduleType scheduleType) {
            return new Settings(kind, steps, scheduleType, 0, false);
        }
    }

    /** Builds the sampler for {@code settings} on the training noise schedule. */
    static Sampler create(Settings settings, NoiseSchedule schedule) {
        SigmaSchedule sigmas = settings.scheduleType() == ScheduleType.KARRAS
                ? SigmaSchedule.karras(schedule, settings.steps())
                : SigmaSchedule.linspace(schedule, settings.steps());
        return switch (settings.kind()) {
            case EULER_A -> new Samplers.EulerAncestral(sigmas);
            case EULER -> new Samplers.Euler(sigmas);
            case DPMPP_2M -> new Samplers.DpmPp2m(sigmas);
            case DDIM -> new Samplers.Ddim(schedule, settings.steps(), settings.eta(), settings.clipSample());
        };
    }

    /** Which sampler this is. */
    SamplerKind kind();

    /** The timesteps and sigmas of the run (for DDIM its timesteps with σ = sqrt((1−ᾱ)/ᾱ), last 0). */
    SigmaSchedule schedule();

    /** What N(0, 1) noise is multiplied by to start: σ_max for the σ samplers, 1 for DDIM. */
    float initNoiseSigma();

    /**
     * Runs every step.
     *
     * @param x (N, C, H, W) the starting latents, already {@code noise · initNoiseSigma()}; not modified
     * @param model the noise prediction (with guidance)
     * @param noise ancestral noise (drawn at every step by Euler a and by DDIM with η > 0, else unused)
     * @return (N, C, H, W) the final latents
     */
    float[] run(float[] x, Denoiser model, GaussianSource noise);

    /** {@code n} N(0, 1) draws from {@code noise} times {@link #initNoiseSigma()}: the latents to {@link #run} from. */
    default float[] initialLatents(GaussianSource noise, int n) {
        float[] x = noise.next(n);
        float s = initNoiseSigma();
        for (int i = 0; i < n; i++) {
            x[i] *= s;
        }
        return x;
    }
}
