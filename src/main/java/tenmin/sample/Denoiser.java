package tenmin.sample;

/**
 * The noise prediction a sampler calls once per step: the U-Net with classifier-free guidance applied by
 * the caller ({@code ε = ε_u + scale·(ε_c − ε_u)}).
 */
@FunctionalInterface
public interface Denoiser {
    /**
     * Predicts the noise ε in {@code input}.
     *
     * @param input (N, C, H, W) the latents already scaled for the model (σ samplers: {@code x/sqrt(σ²+1)};
     *     DDIM: {@code x} itself); must not be modified
     * @param timestep the U-Net timestep (fractional for interpolated schedules)
     * @return (N, C, H, W) ε, a new array
     */
    float[] predictNoise(float[] input, double timestep);
}
