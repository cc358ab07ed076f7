package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.engine.autograd.GradAssert.randn;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;

/**
 * Checkpointed blocks under an inference facade (sampling): the same outputs bit for bit, with each block's
 * intermediates released when it returns, so only block outputs are alive after the forward.
 */
class CheckpointInferenceTest {

    /** Three blocks of several ops each; returns the output and the step's live tensors after the forward. */
    private static Object[] forward(Scope model, Tensor x, Tensor w, boolean checkpoint) {
        try (Scope step = model.child("step")) {
            Functional f = Functional.inference(step);
            Tensor h = x;
            for (int b = 0; b < 3; b++) {
                h = f.checkpoint("block " + b, checkpoint, (g, in) -> {
                    Tensor a = g.silu(g.linear(in.get(0), w, null));
                    Tensor c = g.mul(a, g.gelu(a));
                    return g.add(g.scale(c, 0.5), in.get(0));
                }, h);
            }
            Tensor passThrough = f.checkpoint("identity", checkpoint, (g, in) -> in.get(0), h);
            return new Object[] {passThrough.toHost(), step.liveTensors()};
        }
    }

    @Test
    void inferenceCheckpointingKeepsOnlyBlockOutputs() {
        try (CpuBackend backend = new CpuBackend(2)) {
            try (Scope model = Scope.root(backend, "model")) {
                Tensor x = randn(model, "x", 1, 1.0, 4, 16);
                Tensor w = randn(model, "w", 2, 0.3, 16, 16);
                Object[] plain = forward(model, x, w, false);
                Object[] scoped = forward(model, x, w, true);
                assertArrayEquals((float[]) plain[0], (float[]) scoped[0]);
                // plain: 6 tensors per block stay alive; checkpointed: one output per block plus the alias
                assertEquals(4, (int) scoped[1]);
                assertTrue((int) plain[1] >= 18, "plain forward keeps " + plain[1]);
            }
            assertEquals(0, backend.liveTensors());
        }
    }

    /**
     * Inference kernels (values equal up to the order of sums) only where no recomputation must reproduce them: a
     * checkpointed block under inference may use them; under training, neither its first forward nor its recorded
     * recomputation may, so the two give the same bits; a frozen part (noGrad) inside may in both.
     */
    @Test
    void inferenceKernelsOnlyWhereNothingIsRecomputed() {
        try (CpuBackend backend = new CpuBackend(2); Scope model = Scope.root(backend, "model")) {
            Tensor x = randn(model, "x", 1, 1.0, 2, 4);
            java.util.List<String> seen = new java.util.ArrayList<>();
            Functional.Block block = (g, in) -> {
                seen.add(g.isRecording() + "/" + g.allowsInferenceKernels() + "/" + g.noGrad().allowsInferenceKernels());
                return g.silu(in.get(0));
            };
            try (Scope step = model.child("inference")) {
                Functional f = Functional.inference(step);
                assertTrue(f.allowsInferenceKernels());
                f.checkpoint("block", true, block, x);
                f.checkpoint("outer", true, (g, in) -> g.checkpoint("inner", true, block, in.get(0)), x);
            }
            assertEquals(java.util.List.of("false/true/true", "false/true/true"), seen);
            seen.clear();
            try (Scope step = model.child("training")) {
                Functional f = Functional.training(step);
                assertTrue(!f.allowsInferenceKernels());
                Tensor p = randn(step, "p", 2, 1.0, 2, 4).requireGrad();
                Tensor y = f.checkpoint("outer", true, (g, in) -> g.checkpoint("inner", true, block, in.get(0)), p);
                f.backward(f.sum(y));
            }
            // first forward (outer, then inner replayed), then the outer's recomputation records the inner block's
            // first forward (replayed again) and its recomputation
            assertTrue(seen.size() >= 3, seen.toString());
            for (String s : seen) {
                assertTrue(s.endsWith("/false/true"), "no inference kernels in a recomputed block: " + seen);
            }
        }
    }
}
