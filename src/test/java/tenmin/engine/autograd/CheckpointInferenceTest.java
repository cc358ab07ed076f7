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
}
