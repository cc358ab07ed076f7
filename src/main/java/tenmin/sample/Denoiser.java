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

    /**
     * {@link #predictNoise(float[], double)} where the sampler also knows the step's ᾱ (1/(σ² + 1) for σ samplers),
     * which a v-prediction model needs; by default ᾱ is not used.
     */
    default float[] predictNoise(float[] input, double timestep, double alphaCumprod) {
        return predictNoise(input, timestep);
    }

    /**
     * The noise prediction of a model that predicts v = √ᾱ·ε − √(1−ᾱ)·x0 ({@code vModel}, its output read as v):
     * with x_t the model input, {@code ε = √ᾱ·v + √(1−ᾱ)·x_t} (the identity behind diffusers' v_prediction
     * branches). Samplers must call {@link #predictNoise(float[], double, double)}.
     */
    static Denoiser fromVelocity(Denoiser vModel) {
        return new Denoiser() {
            @Override
            public float[] predictNoise(float[] input, double timestep) {
                throw new IllegalStateException("a v-prediction model needs the step's alpha_cumprod");
            }

            @Override
            public float[] predictNoise(float[] input, double timestep, double alphaCumprod) {
                float[] v = vModel.predictNoise(input, timestep);
                float a = (float) Math.sqrt(alphaCumprod);
                float s = (float) Math.sqrt(1 - alphaCumprod);
                float[] eps = new float[v.length];
                for (int i = 0; i < eps.length; i++) {
                    eps[i] = a * v[i] + s * input[i];
                }
                return eps;
            }
        };
    }
}
