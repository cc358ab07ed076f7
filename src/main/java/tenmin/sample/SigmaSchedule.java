package tenmin.sample;

import java.util.Arrays;

/**
 * The noise levels of one sampling run: the timestep given to the U-Net at each step and the sigmas
 * {@code σ_0 > σ_1 > … > σ_n = 0} the sampler walks down (n + 1 values for n steps).
 *
 * @param timesteps (n) the U-Net timestep at step i (fractional for interpolated schedules)
 * @param sigmas (n + 1) σ at step i, the last one 0
 */
public record SigmaSchedule(double[] timesteps, float[] sigmas) {
    public SigmaSchedule {
        if (sigmas.length != timesteps.length + 1) {
            throw new IllegalArgumentException("a schedule of " + timesteps.length + " steps needs "
                    + (timesteps.length + 1) + " sigmas, got " + sigmas.length);
        }
        timesteps = timesteps.clone();
        sigmas = sigmas.clone();
    }

    /** The number of steps. */
    public int steps() {
        return timesteps.length;
    }

    @Override
    public double[] timesteps() {
        return timesteps.clone();
    }

    @Override
    public float[] sigmas() {
        return sigmas.clone();
    }

    /** σ at step i (i = steps() gives 0). */
    public float sigma(int i) {
        return sigmas[i];
    }

    /** The U-Net timestep at step i. */
    public double timestep(int i) {
        return timesteps[i];
    }

    /** The largest sigma: what the initial N(0,1) noise is multiplied by (diffusers' {@code init_noise_sigma} for linspace spacing). */
    public float initNoiseSigma() {
        float max = 0;
        for (float s : sigmas) {
            max = Math.max(max, s);
        }
        return max;
    }

    /**
     * diffusers' {@code timestep_spacing="linspace"} (Euler, Euler ancestral, the default of kohya's sample
     * images): {@code timesteps = linspace(0, 999, n)} reversed (computed in float64, stored in float32),
     * σ interpolated linearly between the training timesteps, then 0 appended.
     */
    public static SigmaSchedule linspace(NoiseSchedule schedule, int steps) {
        requireSteps(steps);
        int last = NoiseSchedule.TRAIN_TIMESTEPS - 1;
        double[] t = new double[steps];
        float[] s = new float[steps + 1];
        double step = steps > 1 ? (double) last / (steps - 1) : 0;
        for (int i = 0; i < steps; i++) {
            int k = steps - 1 - i; // reversed
            double v = k == steps - 1 && steps > 1 ? last : k * step; // np.linspace sets the end point exactly
            float tf = (float) v;
            t[i] = tf;
            s[i] = (float) schedule.sigmaAtLinear(tf);
        }
        return new SigmaSchedule(t, s);
    }

    /**
     * Karras et al. (2022) sigmas as k-diffusion's {@code get_sigmas_karras}:
     * {@code σ_i = (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ}, ρ = 7, between the schedule's
     * smallest and largest training sigma; timesteps by k-diffusion's {@code sigma_to_t}.
     */
    public static SigmaSchedule karras(NoiseSchedule schedule, int steps) {
        requireSteps(steps);
        double rho = 7.0;
        double minInvRho = Math.pow(schedule.sigmaMin(), 1 / rho);
        double maxInvRho = Math.pow(schedule.sigmaMax(), 1 / rho);
        double[] t = new double[steps];
        float[] s = new float[steps + 1];
        for (int i = 0; i < steps; i++) {
            double ramp = steps > 1 ? (double) i / (steps - 1) : 0;
            s[i] = (float) Math.pow(maxInvRho + ramp * (minInvRho - maxInvRho), rho);
            t[i] = schedule.sigmaToT(s[i]);
        }
        return new SigmaSchedule(t, s);
    }

    private static void requireSteps(int steps) {
        if (steps < 1 || steps > NoiseSchedule.TRAIN_TIMESTEPS) {
            throw new IllegalArgumentException("steps must be in 1.." + NoiseSchedule.TRAIN_TIMESTEPS + ": " + steps);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SigmaSchedule other && Arrays.equals(timesteps, other.timesteps)
                && Arrays.equals(sigmas, other.sigmas);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(timesteps) + Arrays.hashCode(sigmas);
    }

    @Override
    public String toString() {
        return "SigmaSchedule[steps=" + steps() + ", sigmas=" + Arrays.toString(sigmas) + "]";
    }
}
