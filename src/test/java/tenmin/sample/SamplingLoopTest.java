package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.util.Arrays;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import tenmin.testing.Numerics;

/**
 * The pipeline's sampling loop ({@link SdxlPipeline#sampleLatents}) around a simple closed-form denoiser,
 * against the sampler formulas written out here in double precision (trainer-spec §11) with the σ table of
 * schedule.json's float64 ᾱ: fixed seeds give fixed noise (PyTorch's CPU {@code randn}, one generator per
 * image: initial latents first, then one draw per step), the model input is {@code x/sqrt(σ²+1)} (DDIM: x),
 * and each image of a batch equals its own run.
 */
class SamplingLoopTest {
    private static double[] alphaBar; // (1000) sgm's float64 ᾱ
    private static final int PER_IMAGE = 4 * 4 * 6;

    @BeforeAll
    static void load() throws IOException {
        alphaBar = SamplerMathTest.fixtureAlphaBar();
    }

    /** A denoiser that depends on its input, the timestep and the position: ε = 0.4·x_in + 0.2·sin(t/97 + i). */
    private static double stubEps(double xIn, double t, int i) {
        return 0.4 * xIn + 0.2 * Math.sin(t / 97 + i);
    }

    private static final Denoiser STUB = (x, t) -> {
        float[] eps = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            eps[i] = (float) stubEps(x[i], t, i % PER_IMAGE);
        }
        return eps;
    };

    private static double sigma(double t) {
        int j = (int) Math.min(Math.floor(t), 998);
        double s0 = Math.sqrt((1 - alphaBar[j]) / alphaBar[j]);
        double s1 = Math.sqrt((1 - alphaBar[j + 1]) / alphaBar[j + 1]);
        return s0 + (s1 - s0) * (t - j);
    }

    /** diffusers' EulerAncestralDiscreteScheduler (linspace spacing) for one image, in double. */
    private static double[] eulerAncestral(long seed, int steps) {
        TorchGenerator g = new TorchGenerator(seed);
        double[] t = new double[steps];
        double[] s = new double[steps + 1];
        for (int i = 0; i < steps; i++) {
            t[i] = 999.0 * (steps - 1 - i) / (steps - 1);
            s[i] = sigma(t[i]);
        }
        float[] n0 = g.next(PER_IMAGE);
        double[] x = new double[PER_IMAGE];
        for (int k = 0; k < PER_IMAGE; k++) {
            x[k] = n0[k] * s[0];
        }
        for (int i = 0; i < steps; i++) {
            double up = Math.sqrt(s[i + 1] * s[i + 1] * (s[i] * s[i] - s[i + 1] * s[i + 1]) / (s[i] * s[i]));
            double down = Math.sqrt(s[i + 1] * s[i + 1] - up * up);
            float[] noise = g.next(PER_IMAGE);
            for (int k = 0; k < PER_IMAGE; k++) {
                double eps = stubEps(x[k] / Math.sqrt(s[i] * s[i] + 1), t[i], k);
                double x0 = x[k] - s[i] * eps;
                x[k] = x[k] + (x[k] - x0) / s[i] * (down - s[i]) + noise[k] * up;
            }
        }
        return x;
    }

    /** diffusers' DDIMScheduler as kohya uses it ("leading" timesteps, η = 0, ᾱ = 1 after the last step). */
    private static double[] ddim(long seed, int steps) {
        float[] n0 = new TorchGenerator(seed).next(PER_IMAGE);
        double[] x = new double[PER_IMAGE];
        for (int k = 0; k < PER_IMAGE; k++) {
            x[k] = n0[k];
        }
        int ratio = 1000 / steps;
        for (int i = 0; i < steps; i++) {
            int t = (steps - 1 - i) * ratio;
            double a = alphaBar[t];
            double prev = t - ratio >= 0 ? alphaBar[t - ratio] : 1.0;
            for (int k = 0; k < PER_IMAGE; k++) {
                double eps = stubEps(x[k], t, k);
                double x0 = (x[k] - Math.sqrt(1 - a) * eps) / Math.sqrt(a);
                x[k] = Math.sqrt(prev) * x0 + Math.sqrt(1 - prev) * eps;
            }
        }
        return x;
    }

    private static float[] floats(double[]... parts) {
        float[] out = new float[parts.length * PER_IMAGE];
        for (int p = 0; p < parts.length; p++) {
            for (int k = 0; k < PER_IMAGE; k++) {
                out[p * PER_IMAGE + k] = (float) parts[p][k];
            }
        }
        return out;
    }

    @Test
    void eulerAncestralLoopMatchesTheFormulaForEveryImageOfABatch() {
        Sampler s = Sampler.create(Sampler.Settings.of(SamplerKind.EULER_A, 12), NoiseSchedule.sdxl());
        float[] got = SdxlPipeline.sampleLatents(s, new long[] {42, 7}, PER_IMAGE, STUB);
        float[] expected = floats(eulerAncestral(42, 12), eulerAncestral(7, 12));
        Numerics.assertRelClose("euler a latents (2 images)", new long[] {2, 4, 4, 6}, expected, got, 2e-5);
    }

    @Test
    void ddimLoopMatchesTheFormula() {
        Sampler s = Sampler.create(Sampler.Settings.of(SamplerKind.DDIM, 10), NoiseSchedule.sdxl());
        float[] got = SdxlPipeline.sampleLatents(s, new long[] {1234}, PER_IMAGE, STUB);
        Numerics.assertRelClose("ddim latents", new long[] {1, 4, 4, 6}, floats(ddim(1234, 10)), got, 2e-5);
    }

    @Test
    void anImageDoesNotDependOnItsBatch() {
        for (SamplerKind kind : SamplerKind.values()) {
            Sampler s = Sampler.create(Sampler.Settings.of(kind, 6), NoiseSchedule.sdxl());
            float[] pair = SdxlPipeline.sampleLatents(s, new long[] {5, 6}, PER_IMAGE, STUB);
            float[] second = SdxlPipeline.sampleLatents(s, new long[] {6}, PER_IMAGE, STUB);
            assertArrayEquals(second, Arrays.copyOfRange(pair, PER_IMAGE, 2 * PER_IMAGE), kind.a1111Name());
            assertFalse(Arrays.equals(second, Arrays.copyOfRange(pair, 0, PER_IMAGE)), kind + ": seeds 5 and 6 differ");
        }
    }
}
