package tenmin.train.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.function.Supplier;

import org.junit.jupiter.api.Test;

import tenmin.train.Rng;

/** AdamW, Lion and SGD against their papers' / PyTorch docs' formulas, written out here in double. */
class OptimizersTest {
    private static final int N = 7;
    private static final int STEPS = 6;

    private static float[][] grads(long seed) {
        Rng r = new Rng(seed);
        float[][] g = new float[STEPS][N];
        for (float[] row : g) {
            for (int i = 0; i < N; i++) {
                row[i] = (float) (r.nextGaussian() * 0.1);
            }
        }
        return g;
    }

    private static float[] init() {
        float[] w = new float[N];
        for (int i = 0; i < N; i++) {
            w[i] = (float) (0.3 * (i - 3));
        }
        return w;
    }

    /** Runs {@code opt} for STEPS steps with a varying lr and returns the parameter trajectory's end. */
    private static float[] run(Optimizer opt, float[][] grads) {
        Param p = new Param("w", new long[] {N}, init());
        List<ParamGroup> groups = List.of(new ParamGroup("g", 1e-2, List.of(p)));
        for (int s = 0; s < STEPS; s++) {
            p.zeroGrad();
            p.accumulateGrad(grads[s]);
            opt.step(groups, new double[] {lrAt(s)});
        }
        return p.value();
    }

    private static double lrAt(int s) {
        return 1e-2 * (1 - 0.1 * s);
    }

    private static void assertNear(double[] expected, float[] actual, double tol) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol * Math.max(1, Math.abs(expected[i])), "element " + i);
        }
    }

    @Test
    void adamWFollowsDecoupledWeightDecayAdam() {
        double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
        float[][] g = grads(1);
        double[] w = new double[N];
        double[] m = new double[N];
        double[] v = new double[N];
        float[] w0 = init();
        for (int i = 0; i < N; i++) {
            w[i] = w0[i];
        }
        for (int t = 1; t <= STEPS; t++) {
            double lr = lrAt(t - 1);
            for (int i = 0; i < N; i++) {
                w[i] -= lr * wd * w[i];                      // decoupled decay (Loshchilov & Hutter, Alg. 2)
                m[i] = b1 * m[i] + (1 - b1) * g[t - 1][i];
                v[i] = b2 * v[i] + (1 - b2) * g[t - 1][i] * g[t - 1][i];
                double mHat = m[i] / (1 - Math.pow(b1, t));
                double vHat = v[i] / (1 - Math.pow(b2, t));
                // torch puts eps outside sqrt(v)/sqrt(bc2): eps_hat = eps * sqrt(1-b2^t) in this form
                w[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
            }
        }
        assertNear(w, run(new AdamW(AdamW.Hyper.DEFAULTS), g), 2e-6);
    }

    @Test
    void lionUpdatesBySignOfInterpolation() {
        double b1 = 0.9, b2 = 0.99, wd = 0.1;
        float[][] g = grads(2);
        double[] w = new double[N];
        double[] m = new double[N];
        float[] w0 = init();
        for (int i = 0; i < N; i++) {
            w[i] = w0[i];
        }
        for (int t = 0; t < STEPS; t++) {
            double lr = lrAt(t);
            for (int i = 0; i < N; i++) {
                double c = b1 * m[i] + (1 - b1) * g[t][i];
                w[i] = w[i] - lr * (Math.signum(c) + wd * w[i]);
                m[i] = b2 * m[i] + (1 - b2) * g[t][i];
            }
        }
        assertNear(w, run(new Lion(new Lion.Hyper(b1, b2, wd)), g), 1e-6);
    }

    @Test
    void sgdMomentumAndNesterovFollowTorchDocs() {
        float[][] g = grads(3);
        for (boolean nesterov : new boolean[] {false, true}) {
            double mu = 0.9, wd = 0.05;
            double[] w = new double[N];
            double[] b = new double[N];
            float[] w0 = init();
            for (int i = 0; i < N; i++) {
                w[i] = w0[i];
            }
            for (int t = 0; t < STEPS; t++) {
                for (int i = 0; i < N; i++) {
                    double gi = g[t][i] + wd * w[i];
                    b[i] = t == 0 ? gi : mu * b[i] + gi;
                    double d = nesterov ? gi + mu * b[i] : b[i];
                    w[i] -= lrAt(t) * d;
                }
            }
            assertNear(w, run(new Sgd(new Sgd.Hyper(mu, 0, wd, nesterov)), g), 1e-6);
        }
        // plain SGD: one step is w - lr*g
        float[] plain = run(new Sgd(Sgd.Hyper.PLAIN), new float[][] {g[0], new float[N], new float[N], new float[N],
                new float[N], new float[N]});
        for (int i = 0; i < N; i++) {
            assertEquals(init()[i] - lrAt(0) * g[0][i], plain[i], 1e-6);
        }
    }

    @Test
    void separateGroupLearningRates() {
        Param a = new Param("a", new long[] {1}, new float[] {1f});
        Param b = new Param("b", new long[] {1}, new float[] {1f});
        a.accumulateGrad(new float[] {1f});
        b.accumulateGrad(new float[] {1f});
        new Sgd(Sgd.Hyper.PLAIN).step(List.of(new ParamGroup("te", 1e-4, List.of(a)),
                new ParamGroup("unet", 3e-4, List.of(b))), new double[] {0.5, 0.25});
        assertEquals(0.5f, a.value()[0]);
        assertEquals(0.75f, b.value()[0]);
    }

    /** Export after 3 steps, import into a fresh optimizer, 3 more: identical to 6 uninterrupted steps. */
    @Test
    void stateRoundTripContinuesBitForBit() {
        List<Supplier<Optimizer>> makers = List.of(() -> new ClybW(ClybW.Hyper.CLYBW),
                () -> new AdamW(AdamW.Hyper.DEFAULTS), () -> new Lion(Lion.Hyper.DEFAULTS),
                () -> new Sgd(Sgd.Hyper.NESTEROV));
        float[][] g = grads(4);
        for (Supplier<Optimizer> make : makers) {
            float[] straight = run(make.get(), g);

            Param p = new Param("w", new long[] {N}, init());
            List<ParamGroup> groups = List.of(new ParamGroup("g", 1e-2, List.of(p)));
            Optimizer first = make.get();
            for (int s = 0; s < 3; s++) {
                p.zeroGrad();
                p.accumulateGrad(g[s]);
                first.step(groups, new double[] {lrAt(s)});
            }
            OptimizerState saved = first.exportState();
            Optimizer second = make.get();
            second.importState(saved);
            for (int s = 3; s < STEPS; s++) {
                p.zeroGrad();
                p.accumulateGrad(g[s]);
                second.step(groups, new double[] {lrAt(s)});
            }
            assertArrayEquals(straight, p.value(), first.type());
        }
        Optimizer adam = new AdamW(AdamW.Hyper.DEFAULTS);
        OptimizerState clyb = new ClybW(ClybW.Hyper.CLYBW).exportState();
        assertThrows(IllegalArgumentException.class, () -> adam.importState(clyb));
    }

    @Test
    void clipScalesAllGradientsByOneGlobalFactor() {
        Param a = new Param("a", new long[] {2}, new float[2]);
        Param b = new Param("b", new long[] {1}, new float[1]);
        Param none = new Param("none", new long[] {1}, new float[1]);
        a.accumulateGrad(new float[] {3f, 0f});
        b.accumulateGrad(new float[] {4f});
        none.grad()[0] = 100f; // not marked: must not count and must not change
        List<ParamGroup> groups = List.of(new ParamGroup("g", 1, List.of(a, b, none)));
        double norm = GradClip.clip(groups, 1.0);
        assertEquals(5.0, norm, 1e-12);
        float c = (float) (1.0 / (5.0 + 1e-6));
        assertEquals(3f * c, a.grad()[0]);
        assertEquals(4f * c, b.grad()[0]);
        assertEquals(100f, none.grad()[0]);
        // below the limit: unchanged
        assertEquals(Math.sqrt(9 * c * c + 16 * c * c), GradClip.clip(groups, 10.0), 1e-6);
        assertEquals(3f * c, a.grad()[0]);
    }
}
