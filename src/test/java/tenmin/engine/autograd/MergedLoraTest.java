package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.engine.autograd.GradAssert.assertGradients;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import tenmin.core.WithProperty;
import tenmin.engine.api.Backend;
import tenmin.engine.api.OpStats;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.testing.CpuBackendTests;

/**
 * {@code Functional#loraLinear}, {@code #loraConv2d} and {@code #loraLinearGeglu}: the LoRA folded into the weight
 * where that pays (training and checkpoint replays) against central finite differences and against the
 * layer-then-branch form it replaces (the same values within fp32 rounding); pure inference and small row counts keep
 * the branch. The GEGLU form's split products against the one product and the GEGLU on its halves.
 */
class MergedLoraTest extends CpuBackendTests {
    private OpStats stats;
    private Scope root;

    @BeforeEach
    void open() {
        stats = new OpStats();
        root = Scope.root(stats.wrap(backend), "test");
    }

    @AfterEach
    void close() {
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static Tensor in(List<Tensor> in, int i) {
        return in.get(i);
    }

    private long calls(String op) {
        return stats.snapshot().calls().getOrDefault(op, 0L);
    }

    @Test
    void mergedFormHasTheGradientsOfItsValues() {
        Tensor x = param(root, "x", 1, 1, 2, 3, 6);      // 6 rows of 6: merging pays for a (5, 6) weight
        Tensor w = param(root, "w", 2, 0.5, 5, 6);
        Tensor b = param(root, "b", 3, 0.1, 5);
        Tensor down = param(root, "down", 4, 1, 2, 6);
        Tensor up = param(root, "up", 5, 1, 5, 2);
        assertTrue(MergedLoraOp.pays(x, w));
        assertGradients("loraLinear merged", root,
                (f, t) -> f.loraLinear(in(t, 0), in(t, 1), in(t, 2), in(t, 3), in(t, 4), 0.7), x, w, b, down, up);
        assertTrue(calls("loraMerge") > 0, "the merged form ran (the differences evaluate the inference form)");
    }

    @Test
    void fewRowsKeepTheBranch() {
        Tensor x = param(root, "x", 6, 1, 1, 6);           // one row: the branch moves less than the merge
        Tensor w = randn(root, "w", 7, 0.5, 5, 6);
        Tensor down = param(root, "down", 8, 1, 2, 6);
        Tensor up = param(root, "up", 9, 1, 5, 2);
        assertFalse(MergedLoraOp.pays(x, w));
        assertGradients("loraLinear branch", root,
                (f, t) -> f.loraLinear(in(t, 0), w, null, in(t, 1), in(t, 2), 1.5), x, down, up);
        assertEquals(0, calls("loraMerge"));
        assertTrue(calls("loraAdd") > 0);
    }

    /** A layer with a LoRA on it, computed by {@code f}. */
    private interface Layer {
        Tensor apply(Functional f);
    }

    /** Output and the gradients of {@code grads}, with the merged form on or off (frozen weight and bias, as in LoRA training). */
    private List<float[]> run(boolean merge, Layer layer, List<Tensor> grads) {
        return run(Functional.MERGE_LORA_PROPERTY, merge, layer, grads);
    }

    /** As {@link #run(boolean, Layer, List)}, with the switch {@code property} on or off. */
    private List<float[]> run(String property, boolean on, Layer layer, List<Tensor> grads) {
        return WithProperty.with(property, on ? "1" : "0", () -> {
            try (Scope s = root.child("run")) {
                Functional f = Functional.training(s);
                Tensor y = layer.apply(f);
                List<float[]> out = new ArrayList<>(List.of(y.toHost()));
                Tensor seed = randn(s, "seed", 11, 1, y.shape().dims());
                f.backward(y, seed);
                for (Tensor t : grads) {
                    out.add(t.grad().toHost());
                    t.zeroGrad();
                }
                return out;
            }
        });
    }

    /** Both forms' values and gradients, each within fp32 rounding of its largest entry; the calls each form made. */
    private void assertFormsAgree(Layer layer, List<Tensor> grads, String branchOp) {
        List<float[]> merged = run(true, layer, grads);
        Map<String, Long> mergedCalls = stats.snapshot().calls();
        stats.reset();
        List<float[]> branch = run(false, layer, grads);
        Map<String, Long> branchCalls = stats.snapshot().calls();
        assertEquals(2, mergedCalls.get("loraMerge"), "forward and backward merge");
        assertFalse(branchCalls.containsKey("loraMerge"));
        assertTrue(branchCalls.get(branchOp) > mergedCalls.getOrDefault(branchOp, 0L), branchOp + " calls: " + branchCalls);
        assertWithinRounding(branch, merged, "y", "dx", "dDown", "dUp");
    }

    /** Two forms' tensors, named in order, each entry within fp32 rounding of its tensor's largest. */
    private static void assertWithinRounding(List<float[]> expected, List<float[]> got, String... names) {
        assertEquals(names.length, expected.size());
        for (int i = 0; i < names.length; i++) {
            float[] m = got.get(i);
            float[] r = expected.get(i);
            double scale = 0;
            for (float v : r) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int j = 0; j < r.length; j++) {
                assertEquals(r[j], m[j], 2e-6 * scale + 1e-7, names[i] + "[" + j + "]");
            }
        }
    }

    @Test
    void mergedLinearEqualsTheBranchWithinRounding() {
        Tensor x = param(root, "x", 12, 1, 4, 16, 24);
        Tensor w = randn(root, "w", 13, 0.2, 20, 24);
        Tensor b = randn(root, "b", 14, 0.1, 20);
        Tensor down = param(root, "down", 15, 0.2, 4, 24);
        Tensor up = param(root, "up", 16, 0.2, 20, 4);
        assertFormsAgree(f -> f.loraLinear(x, w, b, down, up, 0.25), List.of(x, down, up), "loraAdd");
    }

    @Test
    void mergedConvolutionHasTheGradientsOfItsValues() {
        Tensor x = param(root, "x", 24, 1, 2, 3, 6, 6);
        Tensor w = param(root, "w", 25, 0.3, 4, 3, 3, 3);
        Tensor b = param(root, "b", 26, 0.1, 4);
        Tensor down = param(root, "down", 27, 0.3, 2, 3, 3, 3);
        Tensor up = param(root, "up", 28, 0.5, 4, 2, 1, 1);
        assertTrue(MergedLoraOp.pays(x, w));
        assertTrue(MergedLoraOp.projects(w, down), "4 outputs against rank 2: dUp and dDown from the full dW'");
        Tensor w1 = param(root, "w1", 29, 0.3, 4, 3, 1, 1);
        Tensor d1 = param(root, "d1", 30, 0.3, 2, 3, 1, 1);
        for (String project : new String[] {"1", "0"}) {        // the LoCon's gradients projected, then the branch's
            WithProperty.with(MergedLoraOp.PROJECT_PROPERTY, project, () -> {
                assertGradients("loraConv2d merged, stride 2, projected " + project, root,
                        (f, t) -> f.loraConv2d(in(t, 0), in(t, 1), in(t, 2), in(t, 3), in(t, 4), 0.6, 2, 1), x, w, b,
                        down, up);
                assertGradients("loraConv2d merged, 1x1, projected " + project, root, (f, t) -> f.loraConv2d(in(t, 0),
                        in(t, 1), null, in(t, 2), in(t, 3), 1.3, 1, 0), x, w1, d1, up);
                return null;
            });
        }
        assertTrue(calls("loraMerge") > 0);
    }

    @Test
    void projectedGradientsSkipTheHiddenConvolution() {
        Tensor x = randn(root, "x", 36, 1, 2, 3, 8, 8);
        Tensor w = randn(root, "w", 37, 0.3, 4, 3, 3, 3);
        Tensor down = param(root, "down", 38, 0.3, 2, 3, 3, 3);
        Tensor up = param(root, "up", 39, 0.5, 4, 2, 1, 1);
        List<float[]> projected = run(MergedLoraOp.PROJECT_PROPERTY, true,
                f -> f.loraConv2d(x, w, null, down, up, 0.9, 1, 1), List.of(down, up));
        Map<String, Long> projectedCalls = stats.snapshot().calls();
        stats.reset();
        List<float[]> branch = run(MergedLoraOp.PROJECT_PROPERTY, false,
                f -> f.loraConv2d(x, w, null, down, up, 0.9, 1, 1), List.of(down, up));
        Map<String, Long> branchCalls = stats.snapshot().calls();
        assertEquals(1, projectedCalls.get("convolution"), "the layer's product only: " + projectedCalls);
        assertEquals(2, branchCalls.get("convolution"), "and the hidden down(x): " + branchCalls);
        assertEquals(1, projectedCalls.get("convolutionBackward"), "dW' alone gives both gradients");
        assertWithinRounding(branch, projected, "y", "dDown", "dUp");   // x needs no gradient here
        Tensor w640 = randn(root, "w640", 40, 0.1, 640, 640, 3, 3);
        Tensor d640 = randn(root, "d256", 41, 0.1, 256, 640, 3, 3);
        assertFalse(MergedLoraOp.projects(w640, d640), "the recipe's 640-output convolutions keep the branch");
        assertTrue(WithProperty.with(MergedLoraOp.PROJECT_PROPERTY, "always", () -> MergedLoraOp.projects(w640, d640)),
                "a device check projects every one");
        assertFalse(WithProperty.with(MergedLoraOp.PROJECT_PROPERTY, "always",
                () -> MergedLoraOp.projects(randn(root, "lin", 44, 0.1, 8, 6), randn(root, "dl", 45, 0.1, 2, 6))),
                "linear layers never");
        assertTrue(MergedLoraOp.projects(randn(root, "w320", 42, 0.1, 320, 320, 3, 3),
                randn(root, "d256b", 43, 0.1, 256, 320, 3, 3)), "its 320-output ones project");
    }

    @Test
    void mergedConvolutionEqualsTheBranchWithinRounding() {
        Tensor x = param(root, "x", 31, 1, 2, 8, 12, 12);
        Tensor w = randn(root, "w", 32, 0.1, 6, 8, 3, 3);
        Tensor b = randn(root, "b", 33, 0.1, 6);
        Tensor down = param(root, "down", 34, 0.1, 5, 8, 3, 3);
        Tensor up = param(root, "up", 35, 0.3, 6, 5, 1, 1);
        assertFormsAgree(f -> f.loraConv2d(x, w, b, down, up, 0.8, 1, 1), List.of(x, down, up), "convolution");
    }

    @Test
    void inferenceKeepsTheBranchAndAReplayEqualsTheRecording() {
        Tensor x = randn(root, "x", 17, 1, 2, 8, 12);
        Tensor w = randn(root, "w", 18, 0.3, 10, 12);
        Tensor down = param(root, "down", 19, 0.3, 3, 12);
        Tensor up = param(root, "up", 20, 0.3, 10, 3);
        try (Scope s = root.child("inference")) {
            Functional.inference(s).loraLinear(x, w, null, down, up, 0.5);
        }
        assertEquals(0, calls("loraMerge"), "a bypass LoRA in inference runs its branch");
        float[] replayed;
        try (Scope s = root.child("replayed")) {
            replayed = Functional.replayed(s).loraLinear(x, w, null, down, up, 0.5).toHost();
        }
        try (Scope s = root.child("recorded")) {
            float[] recorded = Functional.training(s).loraLinear(x, w, null, down, up, 0.5).toHost();
            assertArrayEquals(recorded, replayed, "a checkpoint's first forward equals its recomputation");
        }
        assertEquals(2, calls("loraMerge"));
    }

    @Test
    void splitGegluHasTheGradientsOfItsValues() {
        Tensor x = param(root, "x", 40, 1, 2, 4, 6);       // 8 rows of 6: merging pays for an (8, 6) weight
        Tensor w = param(root, "w", 41, 0.5, 8, 6);
        Tensor b = param(root, "b", 42, 0.2, 8);
        Tensor down = param(root, "down", 43, 1, 2, 6);
        Tensor up = param(root, "up", 44, 1, 8, 2);
        assertTrue(MergedLoraOp.pays(x, w));
        assertGradients("loraLinearGeglu split", root,
                (f, t) -> f.loraLinearGeglu(in(t, 0), in(t, 1), in(t, 2), in(t, 3), in(t, 4), 0.7), x, w, b, down, up);
        assertTrue(calls("loraMerge") > 0, "the split form ran (the differences evaluate the inference form)");
    }

    @Test
    void splitGegluEqualsOneProductAndItsGegluWithinRounding() {
        Tensor x = param(root, "x", 45, 1, 4, 16, 24);
        Tensor w = randn(root, "w", 46, 0.2, 40, 24);
        Tensor b = randn(root, "b", 47, 0.1, 40);
        Tensor down = param(root, "down", 48, 0.2, 4, 24);
        Tensor up = param(root, "up", 49, 0.2, 40, 4);
        Layer layer = f -> f.loraLinearGeglu(x, w, b, down, up, 0.25);
        List<Tensor> grads = List.of(x, down, up);
        List<float[]> split = run(Functional.SPLIT_GEGLU_PROPERTY, true, layer, grads);
        Map<String, Long> splitCalls = stats.snapshot().calls();
        stats.reset();
        List<float[]> one = run(Functional.SPLIT_GEGLU_PROPERTY, false, layer, grads);
        Map<String, Long> oneCalls = stats.snapshot().calls();
        assertEquals(2, splitCalls.get("loraMerge"), "forward and backward merge");
        assertEquals(3, splitCalls.get("linear"), "the two halves and the hidden product: " + splitCalls);
        assertFalse(splitCalls.containsKey("geglu"));
        assertEquals(1, oneCalls.get("geglu"));
        assertWithinRounding(one, split, "y", "dx", "dDown", "dUp");
    }

    @Test
    void splitGegluReplayEqualsItsRecording() {
        Tensor x = randn(root, "x", 50, 1, 2, 8, 12);
        Tensor w = randn(root, "w", 51, 0.3, 16, 12);
        Tensor down = param(root, "down", 52, 0.3, 3, 12);
        Tensor up = param(root, "up", 53, 0.3, 16, 3);
        float[] replayed;
        try (Scope s = root.child("replayed")) {
            replayed = Functional.replayed(s).loraLinearGeglu(x, w, null, down, up, 0.5).toHost();
        }
        try (Scope s = root.child("recorded")) {
            float[] recorded = Functional.training(s).loraLinearGeglu(x, w, null, down, up, 0.5).toHost();
            assertArrayEquals(recorded, replayed, "a checkpoint's first forward equals its recomputation");
        }
        assertEquals(0, calls("geglu"));
        try (Scope s = root.child("inference")) {
            Functional.inference(s).loraLinearGeglu(x, w, null, down, up, 0.5);
        }
        assertEquals(1, calls("geglu"), "a bypass LoRA in inference: the branch, then the GEGLU");
    }

    @Test
    void mergeOfTheBackendsCheckedOperands() {
        Backend b = root.backend();
        Tensor w = randn(root, "w", 21, 1, 4, 6);
        Tensor down = randn(root, "down", 22, 1, 2, 6);
        Tensor wrongUp = randn(root, "up", 23, 1, 4, 3);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> b.loraMerge(root, w, down, wrongUp, 1.0));
        assertTrue(e.getMessage().startsWith("loraMerge:"), e.getMessage());
    }
}
