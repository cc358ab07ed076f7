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
        NoiseSampler.offsetInPlace(noise, 2, 3, 2, 2, 0.1, new Rng(3));
        for (int nc = 0; nc < 6; nc++) {
            for (int i = 1; i < 4; i++) {
                assertEquals(noise[nc * 4], noise[nc * 4 + i]);
            }
        }
    }

    @Test
    void trainingNoiseAddsTheOffsetBeforeThePyramid() {
        // kohya get_noise_noisy_latents_and_timesteps: randn, apply_noise_offset, then pyramid_noise_like, whose
        // division by the std of the sum includes the offset
        float[] got = NoiseSampler.training(new Rng(11), 2, 4, 16, 16, 0.1, 3, 0.4);
        Rng rng = new Rng(11);
        float[] want = NoiseSampler.gaussian(rng, 2, 4, 16, 16);
        NoiseSampler.offsetInPlace(want, 2, 4, 16, 16, 0.1, rng);
        NoiseSampler.pyramidInPlace(want, 2, 4, 16, 16, 3, 0.4, rng);
        assertArrayEquals(want, got);
        assertEquals(1.0, NoiseSampler.std(got), 1e-5);
        // either one alone
        Rng r2 = new Rng(11);
        float[] offsetOnly = NoiseSampler.gaussian(r2, 1, 4, 8, 8);
        NoiseSampler.offsetInPlace(offsetOnly, 1, 4, 8, 8, 0.1, r2);
        assertArrayEquals(offsetOnly, NoiseSampler.training(new Rng(11), 1, 4, 8, 8, 0.1, 0, 0.4));
    }
}
