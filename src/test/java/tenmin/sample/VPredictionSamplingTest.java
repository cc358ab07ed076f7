package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/**
 * Sampling a v-prediction model: the samplers hand the step's ᾱ to the denoiser and {@link Denoiser#fromVelocity}
 * turns v into ε. Checked against diffusers' own v_prediction formulas, evaluated here in double: Euler
 * ({@code x0 = −σ/√(σ²+1)·v + x/(σ²+1)}, {@code x' = x + (x − x0)/σ·(σ' − σ)}) and DDIM ({@code x0 = √ᾱ·x − √(1−ᾱ)·v},
 * {@code ε = √ᾱ·v + √(1−ᾱ)·x}, {@code x' = √ᾱ'·x0 + √(1−ᾱ')·ε}).
 */
class VPredictionSamplingTest {
    private static final int N = 64;

    private static float[] ramp(double scale, double shift) {
        float[] a = new float[N];
        for (int i = 0; i < N; i++) {
            a[i] = (float) (scale * Math.sin(0.7 * i + shift));
        }
        return a;
    }

    /** A "model" whose output (read as v) depends on its input and timestep, as a network's would. */
    private static Denoiser vModel() {
        return (input, t) -> {
            float[] v = new float[input.length];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.6 * input[i] + 0.3 * Math.cos(0.1 * i + t / 500.0));
            }
            return v;
        };
    }

    @Test
    void eulerStepsAsDiffusersVPrediction() {
        SigmaSchedule full = SigmaSchedule.linspace(NoiseSchedule.sdxl(), 10);
        double[] t2 = {full.timestep(3), full.timestep(4)};
        float[] s2 = {full.sigma(3), full.sigma(4), full.sigma(5)};
        Sampler euler = new Samplers.Euler(new SigmaSchedule(t2, s2));
        float[] x0 = ramp(3, 0.2);
        float[] got = euler.run(x0, Denoiser.fromVelocity(vModel()), out -> { });
        double[] x = new double[N];
        for (int i = 0; i < N; i++) {
            x[i] = x0[i];
        }
        for (int step = 0; step < 2; step++) {
            double sigma = s2[step];
            double next = s2[step + 1];
            float[] in = new float[N];
            for (int i = 0; i < N; i++) {
                in[i] = (float) (x[i] / Math.sqrt(sigma * sigma + 1));
            }
            float[] v = vModel().predictNoise(in, t2[step]);
            for (int i = 0; i < N; i++) {
                double predX0 = v[i] * (-sigma / Math.sqrt(sigma * sigma + 1)) + x[i] / (sigma * sigma + 1);
                x[i] = x[i] + (x[i] - predX0) / sigma * (next - sigma);
            }
        }
        for (int i = 0; i < N; i++) {
            assertEquals(x[i], got[i], 2e-5 * (1 + Math.abs(x[i])), "element " + i);
        }
    }

    @Test
    void ddimStepsAsDiffusersVPrediction() {
        NoiseSchedule noise = NoiseSchedule.sdxl();
        Samplers.Ddim ddim = new Samplers.Ddim(noise, 4, 0, false);
        float[] xStart = ramp(1, 0.5);
        float[] got = ddim.run(xStart, Denoiser.fromVelocity(vModel()), out -> { });
        double[] x = new double[N];
        for (int i = 0; i < N; i++) {
            x[i] = xStart[i];
        }
        for (int t : ddim.timesteps()) {
            double a = noise.alphaCumprod(t);
            double aPrev = t - 250 >= 0 ? noise.alphaCumprod(t - 250) : 1;
            float[] in = new float[N];
            for (int i = 0; i < N; i++) {
                in[i] = (float) x[i];
            }
            float[] v = vModel().predictNoise(in, t);
            for (int i = 0; i < N; i++) {
                double predX0 = Math.sqrt(a) * x[i] - Math.sqrt(1 - a) * v[i];
                double eps = Math.sqrt(a) * v[i] + Math.sqrt(1 - a) * x[i];
                x[i] = Math.sqrt(aPrev) * predX0 + Math.sqrt(1 - aPrev) * eps;
            }
        }
        for (int i = 0; i < N; i++) {
            assertEquals(x[i], got[i], 2e-5 * (1 + Math.abs(x[i])), "element " + i);
        }
    }

    @Test
    void aVelocityModelNeedsTheStepsAlpha() {
        assertThrows(IllegalStateException.class, () -> Denoiser.fromVelocity(vModel()).predictNoise(new float[N], 10));
    }
}
