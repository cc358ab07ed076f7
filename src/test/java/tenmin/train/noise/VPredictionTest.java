package tenmin.train.noise;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

import tenmin.testing.Fixtures;
import tenmin.train.Rng;

/**
 * Training a v-prediction model: the zero-terminal-SNR schedule (Lin et al., algorithm 1, evaluated here in
 * double from diffusers' ᾱ), the velocity target (diffusers get_velocity), and the loss weights the reference
 * applies with v-prediction, all against formulas evaluated here.
 */
class VPredictionTest {

    @Test
    void zeroTerminalSnrRescalesRootAlphaBar() {
        double[] ac = Fixtures.ddpmSchedule("alphas_cumprod");
        int n = ac.length;
        double s0 = Math.sqrt(ac[0]);
        double sT = Math.sqrt(ac[n - 1]);
        DdpmSchedule plain = DdpmSchedule.sdxl();
        DdpmSchedule z = plain.withZeroTerminalSnr();
        for (int t : new int[] {0, 1, 10, 100, 500, 900, 998}) {
            double s = (Math.sqrt(ac[t]) - sT) * s0 / (s0 - sT);
            assertEquals(s * s, z.alphaCumprod(t), 2e-6 * s * s + 1e-9, "t=" + t);
            // the loss weightings keep the SNR of the schedule before the fix, as the reference
            assertEquals(plain.snr(t), z.snr(t));
        }
        assertEquals(0f, z.alphaCumprod(n - 1), "no signal at the last timestep");
        assertEquals(plain.alphaCumprod(0), z.alphaCumprod(0), 1e-7);
    }

    @Test
    void velocityIsTheDiffusersTargetAndGivesBackTheNoise() {
        DdpmSchedule s = DdpmSchedule.sdxl();
        Rng rng = new Rng(4);
        int per = 2 * 4 * 4;
        float[] x0 = NoiseSampler.gaussian(rng, 2, 2, 4, 4);
        float[] eps = NoiseSampler.gaussian(rng, 2, 2, 4, 4);
        int[] t = {37, 812};
        float[] v = s.velocity(x0, eps, t);
        for (int b = 0; b < 2; b++) {
            double a = s.alphaCumprod(t[b]);
            for (int i = b * per; i < (b + 1) * per; i++) {
                double want = Math.sqrt(a) * eps[i] - Math.sqrt(1 - a) * x0[i];
                assertEquals(want, v[i], 1e-6 * (1 + Math.abs(want)));
                double xt = Math.sqrt(a) * x0[i] + Math.sqrt(1 - a) * eps[i];
                assertEquals(eps[i], Math.sqrt(a) * v[i] + Math.sqrt(1 - a) * xt, 1e-5, "ε from v and x_t");
            }
        }
    }

    @Test
    void lossWeightsWithVPrediction() {
        DdpmSchedule s = DdpmSchedule.sdxl();
        int[] t = {0, 20, 300, 999};
        float[] minSnr = new LossWeighting(5, false, 1, true, false, 0).weights(s, t);
        float[] scaled = new LossWeighting(0, false, 1, true, true, 0).weights(s, t);
        float[] like = new LossWeighting(0, false, 1, false, false, 0.2).weights(s, t);
        for (int b = 0; b < t.length; b++) {
            double snr = s.snr(t[b]);
            assertEquals(Math.min(snr, 5) / (snr + 1), minSnr[b], 1e-6, "min-SNR v t=" + t[b]);
            double capped = Math.min(snr, 1000);
            double scale = capped / (capped + 1);
            assertEquals(scale, scaled[b], 1e-6, "scaled like noise prediction t=" + t[b]);
            assertEquals(1 + 0.2 / scale, like[b], 1e-5, "v-prediction-like loss t=" + t[b]);
        }
    }
}
