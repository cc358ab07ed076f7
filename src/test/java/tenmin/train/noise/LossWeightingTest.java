package tenmin.train.noise;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import tenmin.testing.Fixtures;

/**
 * kohya's SNR loss weights against diffusers' ᾱ (schedule.json, float32 as DDPMScheduler has them): the SNR
 * {@code ᾱ / (1 − ᾱ)} and each weighting's formula evaluated here in double precision, independently of
 * {@link DdpmSchedule#snr}'s float32 steps.
 */
class LossWeightingTest {
    private static final int[] TIMESTEPS = {0, 1, 50, 150, 250, 400, 600, 999};

    private static double[] fixtureAlphasCumprod() {
        return Fixtures.ddpmSchedule("alphas_cumprod");
    }

    private static double snr(double ac) {
        return ac / (1 - ac);
    }

    @Test
    void snrIsDiffusersAlphasOverTheirComplement() throws Exception {
        double[] ac = fixtureAlphasCumprod();
        DdpmSchedule s = DdpmSchedule.sdxl();
        for (int t = 0; t < ac.length; t++) {
            double want = snr(ac[t]);
            assertEquals(want, s.snr(t), want * 1e-6, "SNR at t=" + t);
        }
        assertTrue(snr(ac[0]) > 1000 && snr(ac[999]) < 0.01, "the schedule spans both sides of the caps");
    }

    @Test
    void minSnrGammaCapsTheSnrAtGamma() throws Exception {
        double[] ac = fixtureAlphasCumprod();
        float[] w = new LossWeighting(5, false).weights(DdpmSchedule.sdxl(), TIMESTEPS);
        int capped = 0;
        for (int i = 0; i < TIMESTEPS.length; i++) {
            double snr = snr(ac[TIMESTEPS[i]]);
            double want = Math.min(snr, 5.0) / snr;
            assertEquals(want, w[i], 1e-6, "t=" + TIMESTEPS[i]);
            capped += snr > 5 ? 1 : 0;
        }
        assertTrue(capped >= 3 && capped < TIMESTEPS.length, "both sides of gamma are covered");
        assertEquals(1f, w[TIMESTEPS.length - 1], "noisy timesteps (SNR below gamma) keep their whole loss");
    }

    @Test
    void debiasedEstimationIsOneOverRootSnrCappedAtAThousand() throws Exception {
        double[] ac = fixtureAlphasCumprod();
        float[] w = new LossWeighting(0, true).weights(DdpmSchedule.sdxl(), TIMESTEPS);
        for (int i = 0; i < TIMESTEPS.length; i++) {
            double want = 1 / Math.sqrt(Math.min(snr(ac[TIMESTEPS[i]]), 1000));
            assertEquals(want, w[i], want * 1e-6, "t=" + TIMESTEPS[i]);
        }
        assertEquals(1 / Math.sqrt(1000), w[0], 1e-7, "t=0: the cap");
    }

    @Test
    void bothWeightingsMultiply() throws Exception {
        double[] ac = fixtureAlphasCumprod();
        float[] w = new LossWeighting(5, true).weights(DdpmSchedule.sdxl(), TIMESTEPS);
        for (int i = 0; i < TIMESTEPS.length; i++) {
            double snr = snr(ac[TIMESTEPS[i]]);
            double want = Math.min(snr, 5.0) / snr / Math.sqrt(Math.min(snr, 1000));
            assertEquals(want, w[i], want * 2e-6, "t=" + TIMESTEPS[i]);
        }
    }

    /** kohya: loss × loss_weights (prior_loss_weight for regularisation images) first, then the SNR weight. */
    @Test
    void priorLossWeightScalesRegularisationImagesOnly() throws Exception {
        double[] ac = fixtureAlphasCumprod();
        boolean[] reg = new boolean[TIMESTEPS.length];
        reg[1] = true;
        reg[3] = true;
        float[] w = new LossWeighting(5, false, 0.5).weights(DdpmSchedule.sdxl(), TIMESTEPS, reg);
        for (int i = 0; i < TIMESTEPS.length; i++) {
            double snr = snr(ac[TIMESTEPS[i]]);
            double want = (reg[i] ? 0.5 : 1) * Math.min(snr, 5.0) / snr;
            assertEquals(want, w[i], want * 2e-6, "t=" + TIMESTEPS[i]);
        }
        float[] priorOnly = new LossWeighting(0, false, 0.25).weights(DdpmSchedule.sdxl(), TIMESTEPS, reg);
        for (int i = 0; i < TIMESTEPS.length; i++) {
            assertEquals(reg[i] ? 0.25f : 1f, priorOnly[i]);
        }
        // no weights when every one is 1: a prior weight of 1, or no regularisation image in the micro-batch
        assertNull(new LossWeighting(0, false, 1).weights(DdpmSchedule.sdxl(), TIMESTEPS, reg));
        assertNull(new LossWeighting(0, false, 0.25).weights(DdpmSchedule.sdxl(), TIMESTEPS,
                new boolean[TIMESTEPS.length]));
        assertThrows(IllegalArgumentException.class, () -> new LossWeighting(0, false, -1));
    }

    @Test
    void noWeightingMeansNoWeightsAndBadGammasAreRefused() {
        assertNull(LossWeighting.NONE.weights(DdpmSchedule.sdxl(), TIMESTEPS));
        assertNull(new LossWeighting(0, false).weights(DdpmSchedule.sdxl(), TIMESTEPS), "gamma 0 is off, as in kohya");
        assertEquals("min-SNR gamma 5.0 and debiased estimation", new LossWeighting(5, true).describe());
        assertThrows(IllegalArgumentException.class, () -> new LossWeighting(-1, false));
        assertThrows(IllegalArgumentException.class, () -> new LossWeighting(Double.NaN, false));
    }
}
