package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.testing.Fixtures;
import tenmin.train.noise.DdpmSchedule;
import tenmin.train.noise.LossFunction;
import tenmin.train.noise.NoiseSampler;

/**
 * {@code --loss_type huber / smooth_l1} (kohya's {@code conditional_loss} and {@code get_timesteps_and_huber_c}):
 * the thresholds of the three schedules against diffusers' ᾱ evaluated in double, the loss and its gradient
 * against the formulas in double with a threshold per image, per-image weights on top.
 */
class RobustLossTest {

    @Test
    void thresholdSchedulesFollowTheFormulas() {
        double[] ac = Fixtures.ddpmSchedule("alphas_cumprod");
        DdpmSchedule ddpm = DdpmSchedule.sdxl();
        double c0 = 0.1;
        for (int t : new int[] {0, 1, 250, 500, 999}) {
            double sigma = Math.sqrt((1 - ac[t]) / ac[t]);
            double snr = (1 - c0) / ((1 + sigma) * (1 + sigma)) + c0;
            assertEquals(snr, fn(LossFunction.Schedule.SNR, c0).thresholdAt(ddpm, t), 2e-6 * snr, "snr t=" + t);
            double exp = Math.exp(-(-Math.log(c0) / 1000) * t);
            assertEquals(exp, fn(LossFunction.Schedule.EXPONENTIAL, c0).thresholdAt(ddpm, t), 1e-6 * exp, "exp t=" + t);
            assertEquals(0.1f, fn(LossFunction.Schedule.CONSTANT, c0).thresholdAt(ddpm, t));
        }
        // near 1 at little noise, c0 at the most
        assertEquals(1.0, fn(LossFunction.Schedule.SNR, c0).thresholdAt(ddpm, 0), 0.1);
        assertEquals(c0, fn(LossFunction.Schedule.SNR, c0).thresholdAt(ddpm, 999), 0.01);
        assertEquals(c0, fn(LossFunction.Schedule.EXPONENTIAL, c0).thresholdAt(ddpm, 1000), 1e-7);
        assertThrows(IllegalArgumentException.class, () -> fn(LossFunction.Schedule.SNR, 0));
    }

    @Test
    void lossAndGradientMatchTheFormulasWithWeights() {
        int n = 3;
        int per = 2 * 4 * 4;
        Rng rng = new Rng(21);
        float[] eps = NoiseSampler.gaussian(rng, n, 2, 4, 4);
        float[] target = NoiseSampler.gaussian(rng, n, 2, 4, 4);
        float[] w = {0.5f, 1f, 2f};
        float[] c = {0.3f, 0.6f, 0.15f};
        for (LossFunction.Type type : new LossFunction.Type[] {LossFunction.Type.HUBER, LossFunction.Type.SMOOTH_L1}) {
            for (float[] weights : new float[][] {null, w}) {
                double expected = 0;
                double[] grad = new double[eps.length];
                for (int b = 0; b < n; b++) {
                    double wb = weights == null ? 1 : weights[b];
                    double cb = c[b];
                    double scale = type == LossFunction.Type.HUBER ? 2 * cb : 2;
                    for (int i = b * per; i < (b + 1) * per; i++) {
                        double d = (double) eps[i] - target[i];
                        double root = Math.sqrt(d * d + cb * cb);
                        expected += wb * scale * (root - cb) / per / n;
                        grad[i] = wb * scale * d / root / per / n;
                    }
                }
                float[] gotGrad = new float[eps.length];
                float got = lossAndGradient(eps, target, n, weights, type, c, gotGrad);
                assertEquals(expected, got, 1e-6 * Math.abs(expected), type + " loss, weights " + (weights != null));
                for (int i = 0; i < grad.length; i++) {
                    assertEquals(grad[i], gotGrad[i], 1e-6 * Math.abs(grad[i]) + 1e-9, type + " gradient " + i);
                }
            }
        }
        // for |d| much smaller than c the Huber loss is the squared error
        float[] small = new float[per];
        for (int i = 0; i < per; i++) {
            small[i] = 1e-3f * (i - per / 2f);
        }
        float huber = lossAndGradient(small, new float[per], 1, null, LossFunction.Type.HUBER, new float[] {1f},
                new float[per]);
        float mse = lossAndGradient(small, new float[per], 1, null, null, null, new float[per]);
        assertEquals(mse, huber, 1e-3 * mse);
    }

    /** {@code --alpha_mask}: the elementwise loss times the image's mask (the same for every channel), then the means. */
    @Test
    void maskedLossWeighsEachPositionByItsMask() {
        int n = 2;
        int per = 2 * 4 * 4;
        Rng rng = new Rng(30);
        float[] eps = NoiseSampler.gaussian(rng, n, 2, 4, 4);
        float[] target = NoiseSampler.gaussian(rng, n, 2, 4, 4);
        float[] mask = new float[n * 16];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = (i % 3) / 2f;
        }
        double expected = 0;
        for (int b = 0; b < n; b++) {
            for (int i = b * per; i < (b + 1) * per; i++) {
                double d = (double) eps[i] - target[i];
                expected += mask[b * 16 + (i - b * per) % 16] * d * d / per / n;
            }
        }
        Shape shape = Shape.of(n, 2, 4, 4);
        try (CpuBackend backend = new CpuBackend(1); Scope root = Scope.root(backend, "test");
             Scope step = root.child("step")) {
            Functional f = Functional.training(step);
            float got = Trainer.loss(f, step, step.fromHost(eps, shape, DType.F32), step.fromHost(target, shape,
                    DType.F32), null, null, mask).toHost()[0];
            assertEquals(expected, got, 1e-6 * expected);
        }
    }

    /** The thresholds of a micro-batch follow each image's own timestep. */
    @Test
    void eachImageHasItsTimestepsThreshold() {
        LossFunction f = fn(LossFunction.Schedule.SNR, 0.1);
        int[] t = {0, 500, 999};
        float[] c = f.at(DdpmSchedule.sdxl(), t).c();
        for (int b = 0; b < t.length; b++) {
            assertEquals(f.thresholdAt(DdpmSchedule.sdxl(), t[b]), c[b]);
        }
        assertTrue(c[0] > c[1] && c[1] > c[2], java.util.Arrays.toString(c));
    }

    private static LossFunction fn(LossFunction.Schedule schedule, double c0) {
        return new LossFunction(LossFunction.Type.HUBER, schedule, c0);
    }

    /**
     * {@link Trainer#loss} on the CPU backend with the loss {@code type} at threshold {@code c} (a null type: the
     * squared error); the gradient by ε̂ goes into {@code grad}.
     */
    private static float lossAndGradient(float[] eps, float[] target, int n, float[] weights, LossFunction.Type type,
                                         float[] c, float[] grad) {
        LossFunction.AtStep robust = type == null ? null
                : new LossFunction.AtStep(new LossFunction(type, LossFunction.Schedule.CONSTANT, 0.1), c);
        Shape shape = Shape.of(n, eps.length / n / 16, 4, 4);
        try (CpuBackend backend = new CpuBackend(1); Scope root = Scope.root(backend, "test")) {
            Tensor e = root.fromHost(eps, shape, DType.F32).requireGrad();
            float loss;
            try (Scope step = root.child("step")) {
                Functional f = Functional.training(step);
                Tensor l = Trainer.loss(f, step, e, step.fromHost(target, shape, DType.F32), weights, robust,
                        null);
                loss = l.toHost()[0];
                f.backward(l);
            }
            System.arraycopy(e.grad().toHost(), 0, grad, 0, grad.length);
            return loss;
        }
    }
}
