package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;

/**
 * The draws of a stochastic forward: dropout keep-masks with the asked probability and values, the same draws from
 * the same key, and a checkpointed block whose recomputation sees the masks its forward drew, so gradients with and
 * without checkpointing are the same bit for bit (they would differ if the recomputation drew new masks).
 */
class RandomnessTest {
    private final CpuBackend backend = new CpuBackend(2);
    private final Scope root = Scope.root(backend, "test");

    @AfterEach
    void close() {
        root.close();
        assertEquals(0, backend.liveTensors());
        backend.close();
    }

    private float[] mask(Randomness r, int n, double p, double kept) {
        try (Scope s = root.child("mask")) {
            return Functional.training(s).withRandomness(r).keepMask(Shape.of(n), DType.F32, p, kept).toHost();
        }
    }

    @Test
    void keepMasksKeepOneMinusPOfTheValuesScaledAsAsked() {
        int n = 200_000;
        for (double p : new double[] {0.1, 0.5, 0.9}) {
            float[] m = mask(Randomness.of(3, 0), n, p, 1 / (1 - p));
            int kept = 0;
            for (float v : m) {
                if (v != 0) {
                    assertEquals((float) (1 / (1 - p)), v, 1e-6f);
                    kept++;
                }
            }
            // binomial: 5 standard deviations
            double sd = Math.sqrt(n * p * (1 - p));
            assertEquals(n * (1 - p), kept, 5 * sd, "p " + p);
        }
        for (float v : mask(Randomness.of(3, 0), 1000, 0, 1)) {
            assertEquals(1f, v);
        }
        for (float v : mask(Randomness.of(3, 0), 1000, 1, 0)) {
            assertEquals(0f, v);
        }
    }

    @Test
    void theSameKeyDrawsTheSameMasksAndACopyTheNextOnes() {
        Randomness a = Randomness.of(42, 0);
        float[] first = mask(a, 4096, 0.5, 2);
        Randomness at = a.copy();
        float[] second = mask(a, 4096, 0.5, 2);
        assertFalse(java.util.Arrays.equals(first, second), "two draws of one forward differ");
        assertArrayEquals(first, mask(Randomness.of(42, 0), 4096, 0.5, 2));
        assertArrayEquals(second, mask(at, 4096, 0.5, 2));
        assertFalse(java.util.Arrays.equals(first, mask(Randomness.of(42, 1), 4096, 0.5, 2)), "another stream");
        assertFalse(java.util.Arrays.equals(first, mask(Randomness.of(43, 0), 4096, 0.5, 2)), "another key");
        double u = Randomness.of(9, 0).nextUniform();
        assertTrue(u >= 0 && u < 1);
        assertEquals(u, Randomness.of(9, 0).nextUniform());
    }

    @Test
    void aForwardWithoutRandomnessHasNoMasks() {
        try (Scope s = root.child("s")) {
            Functional f = Functional.training(s);
            assertNull(f.randomness());
            assertThrows(IllegalStateException.class, () -> f.keepMask(Shape.of(4), DType.F32, 0.5, 2));
            Randomness r = Randomness.of(1, 0);
            assertEquals(r, f.withRandomness(r).in(s).randomness());
            assertEquals(r, f.withRandomness(r).noGrad().randomness());
        }
    }

    // ---- checkpointed blocks replay their draws ----

    private final Tensor x = randn(root, "x", 1, 1, 4, 16).requireGrad();
    private final Tensor w1 = param(root, "w1", 2, 0.3, 16, 16);
    private final Tensor w2 = param(root, "w2", 3, 0.3, 16, 16);

    /** Two dropped-out layers, the second inside a nested checkpoint. */
    private Tensor block(Functional f, Tensor h) {
        Tensor a = f.linear(h, w1, null);
        Tensor da = f.mul(a, f.keepMask(a.shape(), a.dtype(), 0.5, 2));
        Tensor b = f.checkpoint("inner", true, (g, in) -> {
            Tensor l = g.silu(g.linear(in.get(0), w2, null));
            return g.mul(l, g.keepMask(l.shape(), l.dtype(), 0.3, 1 / 0.7));
        }, da);
        return f.add(b, h);
    }

    private List<float[]> run(boolean checkpoint, long key) {
        for (Tensor t : List.of(x, w1, w2)) {
            t.zeroGrad();
        }
        List<float[]> result = new ArrayList<>();
        try (Scope step = root.child("step")) {
            Functional f = Functional.training(step).withRandomness(Randomness.of(key, 0));
            Tensor y = f.checkpoint("outer", checkpoint, (g, in) -> block(g, in.get(0)), x);
            Tensor z = f.mul(y, f.keepMask(y.shape(), y.dtype(), 0.2, 1.25));   // a draw after the block
            result.add(z.toHost());
            f.backward(z, randn(step, "seed", 11, 1, 4, 16));
        }
        for (Tensor t : List.of(x, w1, w2)) {
            result.add(t.grad().toHost());
        }
        return result;
    }

    @Test
    void checkpointedBlocksGiveTheGradientsOfTheirForwardsMasks() {
        List<float[]> plain = run(false, 5);
        List<float[]> checkpointed = run(true, 5);
        for (int i = 0; i < plain.size(); i++) {
            assertArrayEquals(plain.get(i), checkpointed.get(i), "output and gradients, entry " + i);
        }
        List<float[]> other = run(true, 6);
        assertFalse(java.util.Arrays.equals(plain.get(2), other.get(2)), "another key drops other values");
    }

    @Test
    void droppedOutBlocksPassTheFiniteDifferenceCheck() {
        // fixed draws (a new Randomness of one key per evaluation): a differentiable function of x, w1 and w2
        GradAssert.assertGradients("dropout block", root,
                (f, in) -> f.withRandomness(Randomness.of(8, 0)).checkpoint("outer", true,
                        (g, b) -> block(g, b.get(0)), in.get(0)), x, w1, w2);
    }
}
