package tenmin.train.noise;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;
import tenmin.train.Rng;

class NoiseTest {

    @Test
    void alphasCumprodEqualsDiffusersFloat32Exactly() throws Exception {
        double[] ac = Fixtures.ddpmSchedule("alphas_cumprod");
        float[] expected = new float[ac.length];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (float) ac[i];
        }
        assertArrayEquals(expected, DdpmSchedule.sdxl().alphasCumprod());
    }

    @Test
    void addNoiseMatchesDiffusersFixture() {
        Path p = Fixtures.require("sampler-io.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            long[] t = f.readLongs("ddpm.timesteps");
            int[] ts = new int[t.length];
            for (int i = 0; i < t.length; i++) {
                ts[i] = (int) t[i];
            }
            float[] x0 = f.readFloats("ddpm.x0");
            float[] out = new float[x0.length];
            DdpmSchedule.sdxl().addNoiseInto(out, x0, f.readFloats("ddpm.noise"), ts);
            Numerics.assertClose("ddpm.x_t", f.info("ddpm.x_t").shape(), f.readFloats("ddpm.x_t"), out, 1e-7, 1e-6);
        }
    }

    /** The example of PyTorch's nn.Upsample documentation (bilinear, align_corners=False). */
    @Test
    void bilinearMatchesPytorchUpsampleExample() {
        float[] src = {1, 2, 3, 4};
        float[] out = new float[16];
        Resample.bilinearAddInto(out, src, 1, 2, 2, 4, 4, 1f);
        float[] expected = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f,
                3.0f, 3.25f, 3.75f, 4.0f};
        assertArrayEquals(expected, out);
        // 1x1 -> constant plane
        float[] c = new float[6];
        Resample.bilinearAddInto(c, new float[] {2f}, 1, 1, 1, 2, 3, 0.5f);
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, c);
    }

    @Test
    void pyramidNoiseHasUnitStdAndStopsAtOnePixel() {
        int n = 2, c = 4, h = 16, w = 24;
        int[] levelCounts = new int[13];
        for (int seed = 0; seed < 300; seed++) {
            Rng rng = new Rng(seed);
            float[] noise = NoiseSampler.gaussian(rng, n, c, h, w);
            int levels = NoiseSampler.pyramidInPlace(noise, n, c, h, w, 12, 0.4, rng);
            levelCounts[levels]++;
            assertEquals(1.0, NoiseSampler.std(noise), 1e-5);
        }
        // h' = floor(16 / r^i) with r in [2,4): i=1 gives 4..8, i=2 gives 1..4, so 2 to 4 levels; i=3 always 1
        for (int l = 0; l < levelCounts.length; l++) {
            if (l < 3 || l > 4) {
                assertEquals(0, levelCounts[l], "runs with " + l + " levels");
            }
        }
        assertTrue(levelCounts[3] > 0 && levelCounts[4] > 0);
    }

    /** trainer-spec §5.2: at 128x128 latents the loop stops after 5-7 levels (~58 / 36 / 6 %). */
    @Test
    void pyramidLevelsAt128MatchTheSpecifiedDistribution() {
        int[] counts = new int[13];
        int runs = 1500;
        for (int seed = 0; seed < runs; seed++) {
            Rng rng = new Rng(1000 + seed);
            float[] noise = new float[128 * 128];
            counts[NoiseSampler.pyramidInPlace(noise, 1, 1, 128, 128, 12, 0.4, rng)]++;
        }
        assertEquals(runs, counts[5] + counts[6] + counts[7]);
        assertEquals(0.58, counts[5] / (double) runs, 0.05);
        assertEquals(0.36, counts[6] / (double) runs, 0.05);
        assertEquals(0.06, counts[7] / (double) runs, 0.03);
    }

    @Test
    void timestepsAreUniformIntegersInRange() {
        Rng rng = new Rng(5);
        int[] hist = new int[10];
        for (int i = 0; i < 20000; i++) {
            int t = NoiseSampler.timesteps(rng, 1, 0, 1000)[0];
            assertTrue(t >= 0 && t < 1000);
            hist[t / 100]++;
        }
        for (int b : hist) {
            assertEquals(2000, b, 200);
        }
        int[] narrow = NoiseSampler.timesteps(rng, 50, 200, 201);
        for (int t : narrow) {
            assertEquals(200, t);
        }
    }

    @Test
    void noiseOffsetAddsOneValuePerChannel() {
        float[] noise = new float[2 * 3 * 4];
        float[] strengths = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
        NoiseSampler.offsetInPlace(noise, 2, 3, 2, 2, strengths, new Rng(3));
        for (int nc = 0; nc < 6; nc++) {
            assertTrue(noise[nc * 4] != 0);
            for (int i = 1; i < 4; i++) {
                assertEquals(noise[nc * 4], noise[nc * 4 + i]);
            }
        }
    }

    @Test
    void trainingNoiseAddsTheOffsetBeforeThePyramid() {
        // kohya get_noise_noisy_latents_and_timesteps: randn, apply_noise_offset, then pyramid_noise_like, whose
        // division by the std of the sum includes the offset
        float[] x0 = new float[2 * 4 * 16 * 16];
        NoiseOptions both = new NoiseOptions(0.1, false, null, 3, 0.4, 0, false);
        float[] got = NoiseSampler.training(new Rng(11), x0, 2, 4, 16, 16, both);
        Rng rng = new Rng(11);
        float[] want = NoiseSampler.gaussian(rng, 2, 4, 16, 16);
        NoiseSampler.offsetInPlace(want, 2, 4, 16, 16, filled(8, 0.1f), rng);
        NoiseSampler.pyramidInPlace(want, 2, 4, 16, 16, 3, 0.4, rng);
        assertArrayEquals(want, got);
        assertEquals(1.0, NoiseSampler.std(got), 1e-5);
        // either one alone
        Rng r2 = new Rng(11);
        float[] offsetOnly = NoiseSampler.gaussian(r2, 1, 4, 8, 8);
        NoiseSampler.offsetInPlace(offsetOnly, 1, 4, 8, 8, filled(4, 0.1f), r2);
        assertArrayEquals(offsetOnly, NoiseSampler.training(new Rng(11), new float[4 * 64], 1, 4, 8, 8,
                new NoiseOptions(0.1, false, null, 0, 0.4, 0, false)));
        Rng r3 = new Rng(11);
        float[] pyramidOnly = NoiseSampler.gaussian(r3, 1, 4, 8, 8);
        NoiseSampler.pyramidInPlace(pyramidOnly, 1, 4, 8, 8, 3, 0.4, r3);
        assertArrayEquals(pyramidOnly, NoiseSampler.training(new Rng(11), new float[4 * 64], 1, 4, 8, 8,
                NoiseOptions.multires(3, 0.4)));
    }

    /**
     * kohya's apply_noise_offset with adaptive_noise_scale a: each channel's strength is
     * max(0, offset + a·|mean_{h,w}(latents)|); with noise_offset_random_strength the offset is U(0,1)·offset.
     */
    @Test
    void adaptiveAndRandomOffsetStrengths() {
        int n = 1, c = 3, h = 2, w = 2;
        float[] x0 = {1, 2, 3, 2,      // mean 2
                      -4, -4, -4, -4,   // mean -4
                      0.5f, -0.5f, 0, 0};  // mean 0
        float[] s = NoiseSampler.offsetStrengths(new Rng(1), x0, n, c, h, w, new NoiseOptions(0.1, false, 0.05, 0, 0.3, 0,
                false));
        assertArrayEquals(new float[] {0.1f + 0.05f * 2, 0.1f + 0.05f * 4, 0.1f}, s, 1e-7f);
        // a negative scale lowers the offset, clamped at 0
        float[] neg = NoiseSampler.offsetStrengths(new Rng(1), x0, n, c, h, w, new NoiseOptions(0.1, false, -0.04, 0,
                0.3, 0, false));
        assertArrayEquals(new float[] {0.1f - 0.04f * 2, 0f, 0.1f}, neg, 1e-7f);
        // random strength: one U(0,1) per micro-batch, the same for every channel, below the offset
        double sum = 0;
        int runs = 2000;
        for (int seed = 0; seed < runs; seed++) {
            float[] r = NoiseSampler.offsetStrengths(new Rng(seed), new float[2 * 3 * 4], 2, 3, 2, 2,
                    new NoiseOptions(0.2, true, null, 0, 0.3, 0, false));
            for (float v : r) {
                assertEquals(r[0], v);
            }
            assertTrue(r[0] >= 0 && r[0] < 0.2f, "strength " + r[0]);
            sum += r[0];
        }
        assertEquals(0.1, sum / runs, 0.005);
    }

    /**
     * Input perturbation (kohya's ip_noise_gamma): the model input is add_noise(x0, ε + γ·N(0,1), t) while the
     * target stays ε, and ε and t are the draws of a run without it. Recovered from x_t, the perturbation has
     * standard deviation γ (with random strength: U(0,1)·γ per micro-batch, mean γ/2).
     */
    @Test
    void inputPerturbationNoisesTheInputNotTheTarget() {
        int n = 2, c = 4, h = 32, w = 32;
        Rng data = new Rng(99);
        float[] x0 = NoiseSampler.gaussian(data, n, c, h, w);
        DdpmSchedule s = DdpmSchedule.sdxl();
        NoiseOptions plain = NoiseOptions.multires(6, 0.3);
        NoiseOptions ip = new NoiseOptions(0, false, null, 6, 0.3, 0.1, false);
        NoiseSampler.Noised without = NoiseSampler.noised(new Rng(5), x0, n, c, h, w, plain, 0, 1000, s);
        NoiseSampler.Noised with = NoiseSampler.noised(new Rng(5), x0, n, c, h, w, ip, 0, 1000, s);
        assertArrayEquals(without.noise(), with.noise());
        assertArrayEquals(without.timesteps(), with.timesteps());
        float[] expectedPlain = new float[x0.length];
        s.addNoiseInto(expectedPlain, x0, without.noise(), without.timesteps());
        assertArrayEquals(expectedPlain, without.noisy());
        assertEquals(0.1, perturbationStd(with, x0, n, s), 0.002);
        // random strength: the recovered std is uniform in [0, γ)
        double sum = 0;
        int runs = 200;
        NoiseOptions random = new NoiseOptions(0, false, null, 0, 0.3, 0.1, true);
        for (int seed = 0; seed < runs; seed++) {
            double std = perturbationStd(NoiseSampler.noised(new Rng(seed), x0, n, c, h, w, random, 0, 1000, s), x0, n,
                    s);
            assertTrue(std < 0.1 * 1.03, "std " + std);
            sum += std;
        }
        assertEquals(0.05, sum / runs, 0.006);
    }

    /** The std of (x_t − √ᾱ·x0)/√(1−ᾱ) − ε over a micro-batch (in double). */
    private static double perturbationStd(NoiseSampler.Noised d, float[] x0, int n, DdpmSchedule s) {
        int per = x0.length / n;
        float[] ac = s.alphasCumprod();
        double ss = 0;
        for (int b = 0; b < n; b++) {
            double a = ac[d.timesteps()[b]];
            for (int i = b * per; i < (b + 1) * per; i++) {
                double p = (d.noisy()[i] - Math.sqrt(a) * x0[i]) / Math.sqrt(1 - a) - d.noise()[i];
                ss += p * p;
            }
        }
        return Math.sqrt(ss / x0.length);
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }
}
