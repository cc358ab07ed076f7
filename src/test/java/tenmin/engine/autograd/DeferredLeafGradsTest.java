package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import tenmin.core.WithProperty;
import tenmin.engine.api.DType;
import tenmin.engine.api.OpStats;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.testing.CpuBackendTests;

/**
 * {@code Tape#addLeafGrad}: the parameter gradients of a backward, from the tape and from a checkpointed block's
 * recomputation, reach the leaves in one {@code axpyIntoAll} when the backward ends, with the same sums, bit for bit,
 * as added one by one ({@code TENMIN_DEFER_GRADS=0}); leaves that already hold gradients (accumulation) keep them.
 */
class DeferredLeafGradsTest extends CpuBackendTests {

    /**
     * Gradients of w1 (used twice, once inside a checkpointed block), w2, b and w3 (through a bf16 cast) after two
     * backwards; the calls of the last.
     */
    private static List<float[]> run(boolean defer, Map<String, Long>[] calls) {
        return WithProperty.with(Tape.DEFER_PROPERTY, defer ? "1" : "0", () -> {
            OpStats stats = new OpStats();
            try (Scope root = Scope.root(stats.wrap(backend), "deferred")) {
                Tensor x = randn(root, "x", 1, 1, 4, 6);
                Tensor w1 = param(root, "w1", 2, 0.5, 6, 6);
                Tensor w2 = param(root, "w2", 3, 0.5, 3, 6);
                Tensor b = param(root, "b", 4, 0.1, 3);
                Tensor w3 = param(root, "w3", 5, 0.5, 3, 3);
                for (int pass = 0; pass < 2; pass++) {                   // a second backward adds to the first's
                    try (Scope step = root.child("step")) {
                        Functional f = Functional.training(step);
                        Tensor h = f.silu(f.linear(x, w1, null));
                        Tensor g = f.checkpoint("block", true, (r, in) -> r.silu(r.linear(in.get(0), w1, null)), h);
                        // w3 in bf16, as the trainer's LoCon: its gradient is the cast's (a partial gradient of the tape)
                        Tensor z = f.linear(g, w2, b);
                        Tensor y = f.cast(f.linear(f.cast(z, DType.BF16), f.cast(w3, DType.BF16), null), DType.F32);
                        stats.reset();
                        f.backward(f.sum(f.mul(y, y)));
                        calls[0] = stats.snapshot().calls();
                    }
                }
                List<float[]> out = new ArrayList<>();
                for (Tensor t : List.of(w1, w2, b, w3)) {
                    out.add(t.grad().toHost());
                }
                return out;
            }
        });
    }

    @Test
    void sumsAtTheEndEqualSumsAsTheyCome() {
        @SuppressWarnings("unchecked")
        Map<String, Long>[] deferredCalls = new Map[1];
        @SuppressWarnings("unchecked")
        Map<String, Long>[] directCalls = new Map[1];
        List<float[]> deferred = run(true, deferredCalls);
        List<float[]> direct = run(false, directCalls);
        for (int i = 0; i < direct.size(); i++) {
            assertArrayEquals(direct.get(i), deferred.get(i), "gradient " + i);
        }
        assertEquals(1L, deferredCalls[0].get("axpyIntoAll"), deferredCalls[0].toString());
        assertEquals(null, deferredCalls[0].get("axpyInto"), "nothing added before the end");
        assertEquals(5L, directCalls[0].get("axpyInto"), "w1 twice, w2, b, w3: " + directCalls[0]);
        assertEquals(null, directCalls[0].get("axpyIntoAll"));
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
