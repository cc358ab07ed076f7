package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.function.Function;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import tenmin.core.WithProperty;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.autograd.GradCheck;
import tenmin.engine.autograd.Randomness;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.Linear;
import tenmin.models.nn.RandomParams;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Numerics;

/**
 * LyCORIS's dropouts of a LoCon module (trainer-spec §8.6, the bypass forward of LyCORIS 3.1): each checked against
 * the module's output without dropout, computed apart — the branch's output values either dropped or divided by
 * 1 − p; whole rank channels dropped for the batch together; the frozen layer alone for a dropped module — with the
 * asked frequencies; and never in a forward without randomness (sampling, evaluation).
 */
class LoConDropoutTest extends CpuBackendTests {
    private Scope root;

    @BeforeEach
    void open() {
        root = Scope.root(backend, "test");
    }

    @AfterEach
    void close() {
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private Tensor randn(long seed, double scale, int... dims) {
        try (Scope tmp = root.child("randn")) {
            Tensor u = tmp.randn(Shape.of(dims), DType.F32, new Generator(seed));
            return backend.affine(root, u, scale, 0);
        }
    }

    /** A linear layer (in 12, out {@code out}) with a LoCon of rank {@code r}; up = I when {@code identityUp}. */
    private LoConModule linear(int out, int r, boolean identityUp, LoConDropout dropout) {
        Linear layer = new Linear(RandomParams.of("", root, DType.F32, 1).at("lin"), 12, out, true);
        Tensor up;
        if (identityUp) {
            float[] eye = new float[out * r];
            for (int i = 0; i < Math.min(out, r); i++) {
                eye[i * r + i] = 1;
            }
            up = root.fromHost(eye, Shape.of(out, r), DType.F32);
        } else {
            up = randn(3, 0.5, out, r);
        }
        LoConModule m = new LoConModule("lora_test", layer, randn(2, 0.5, r, 12).requireGrad(), up.requireGrad(), 3.0);
        m.setDropout(dropout);
        layer.setAdapter(m);
        return m;
    }

    /** The layer's output for x with the forward's draws from {@code draws} (null: a deterministic forward). */
    private float[] forward(LoConModule m, Tensor x, Randomness draws) {
        try (Scope s = root.child("forward")) {
            Functional f = Functional.training(s).withRandomness(draws);
            return ((Linear) m.layer()).forward(f, x).toHost();
        }
    }

    /** The frozen layer alone. */
    private float[] layerAlone(LoConModule m, Tensor x) {
        m.layer().setAdapter(null);
        try {
            return forward(m, x, null);
        } finally {
            m.layer().setAdapter(m);
        }
    }

    @Test
    void networkDropoutKeepsOrScalesEachValueOfTheBranch() {
        LoConModule m = linear(48, 4, false, new LoConDropout(0.25, 0, 0));
        Tensor x = randn(5, 1, 64, 12);
        float[] base = layerAlone(m, x);
        float[] full = forward(m, x, null);          // no randomness: no dropout
        int kept = 0;
        int n = 0;
        for (long key = 0; key < 4; key++) {
            float[] y = forward(m, x, Randomness.of(key, 0));
            for (int i = 0; i < y.length; i++) {
                double branch = full[i] - base[i];
                double got = y[i] - base[i];
                if (Math.abs(got) < 1e-6) {
                    n++;
                    continue;
                }
                assertEquals(branch / 0.75, got, 1e-5 + 1e-5 * Math.abs(branch), "value " + i);
                kept++;
                n++;
            }
        }
        double sd = Math.sqrt(n * 0.25 * 0.75);
        assertEquals(0.75 * n, kept, 5 * sd, kept + " of " + n + " kept");
    }

    @Test
    void rankDropoutDropsWholeRankChannelsForTheBatchTogether() {
        int r = 16;
        LoConModule m = linear(r, r, true, new LoConDropout(0, 0.5, 0));   // up = I: output j is rank channel j
        Tensor x = randn(6, 1, 8, 12);
        float[] base = layerAlone(m, x);
        float[] full = forward(m, x, null);
        int kept = 0;
        int draws = 40;
        for (long key = 0; key < draws; key++) {
            float[] y = forward(m, x, Randomness.of(key, 0));
            for (int j = 0; j < r; j++) {
                boolean keptJ = Math.abs(y[j] - base[j]) > 1e-6;
                for (int row = 0; row < 8; row++) {
                    int i = row * r + j;
                    float expected = keptJ ? full[i] : base[i];
                    assertEquals(expected, y[i], 1e-5, "rank channel " + j + " of row " + row + ", key " + key);
                }
                kept += keptJ ? 1 : 0;
            }
        }
        int n = draws * r;
        assertEquals(0.5 * n, kept, 5 * Math.sqrt(n * 0.25), kept + " of " + n + " channels kept (not rescaled)");
    }

    @Test
    void rankDropoutGivesTheSameOutputMergedIntoTheWeightAndAsABranch() {
        LoConModule m = linear(20, 6, false, new LoConDropout(0, 0.5, 0));
        Tensor x = randn(7, 1, 10, 12);
        Function<String, float[]> run = merge -> WithProperty.with(Functional.MERGE_LORA_PROPERTY, merge,
                () -> WithProperty.with(Functional.MERGE_ALWAYS_PROPERTY, merge.equals("1") ? "true" : "false",
                        () -> forward(m, x, Randomness.of(11, 0))));
        float[] merged = run.apply("1");
        float[] branch = run.apply("0");
        Numerics.assertClose("merged against branch", new long[] {10, 20}, branch, merged, 1e-5, 1e-5);
        float[] full = forward(m, x, null);
        assertTrue(!java.util.Arrays.equals(full, merged), "some rank channels dropped");
    }

    @Test
    void moduleDropoutReturnsTheFrozenLayerAloneWithProbabilityP() {
        LoConModule m = linear(10, 4, false, new LoConDropout(0, 0, 0.3));
        Tensor x = randn(8, 1, 3, 12);
        float[] base = layerAlone(m, x);
        float[] full = forward(m, x, null);
        int skipped = 0;
        int calls = 400;
        for (long key = 0; key < calls; key++) {
            float[] y = forward(m, x, Randomness.of(key, 0));
            if (java.util.Arrays.equals(y, base)) {
                skipped++;
            } else {
                assertArrayEquals(full, y, "key " + key + ": the module entire when not dropped");
            }
        }
        assertEquals(0.3 * calls, skipped, 5 * Math.sqrt(calls * 0.21), skipped + " of " + calls + " calls dropped");
    }

    @Test
    void aForwardWithoutRandomnessNeverDrops() {
        LoConModule m = linear(10, 4, false, new LoConDropout(0.5, 0.5, 0.5));
        LoConModule plain = linear(10, 4, false, LoConDropout.NONE);
        Tensor x = randn(9, 1, 3, 12);
        assertArrayEquals(forward(plain, x, null), forward(m, x, null));
        // and without dropout a forward with randomness draws nothing and changes nothing
        Randomness r = Randomness.of(1, 0);
        assertArrayEquals(forward(plain, x, null), forward(plain, x, r));
        assertEquals(0, r.count());
    }

    @Test
    void theFeedForwardFormDropsAsTheLinearForm() {
        LoConModule m = linear(16, 4, false, new LoConDropout(0.3, 0.4, 0));
        Tensor x = randn(10, 1, 5, 12);
        Linear layer = (Linear) m.layer();
        try (Scope s = root.child("geglu")) {
            Functional f = Functional.training(s);
            Tensor fused = layer.forwardGeglu(f.withRandomness(Randomness.of(4, 0)), x);
            Tensor separate = f.geglu(layer.forward(f.withRandomness(Randomness.of(4, 0)), x));
            assertArrayEquals(separate.toHost(), fused.toHost());
        }
    }

    @Test
    void gradientsOfADroppedOutConvolutionMatchFiniteDifferences() {
        Conv2d conv = new Conv2d(RandomParams.of("", root, DType.F32, 2).at("conv"), 3, 5, 3, 2, 1, true);
        LoConModule m = new LoConModule("lora_conv", conv, randn(12, 0.4, 4, 3, 3, 3).requireGrad(),
                randn(13, 0.4, 5, 4, 1, 1).requireGrad(), 2.0);
        m.setDropout(new LoConDropout(0.3, 0.5, 0));
        conv.setAdapter(m);
        Tensor x = randn(14, 1, 2, 3, 6, 6).requireGrad();
        // the same key for every evaluation: fixed masks, a smooth function of x, down and up
        List<GradCheck.InputGrad> grads = GradCheck.check(root,
                (f, in) -> conv.forward(f.withRandomness(Randomness.of(21, 0)), in.get(0)),
                List.of(x, m.down(), m.up()), 1e-2, 99);
        assertEquals(3, grads.size());
        for (GradCheck.InputGrad g : grads) {
            Numerics.assertClose("d/d" + g.input().name(), g.input().shape().dimsLong(), g.numeric(), g.analytic(),
                    2e-3, 1e-2);
        }
    }

    @Test
    void probabilitiesOutsideZeroToOneAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LoConDropout(1.5, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new LoConDropout(0, -0.1, 0));
        assertThrows(IllegalArgumentException.class, () -> new LoConDropout(0, 0, Double.NaN));
    }
}
