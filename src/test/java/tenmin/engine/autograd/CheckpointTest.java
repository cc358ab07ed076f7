package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;

/**
 * Gradient checkpointing: identical (bit for bit) outputs and gradients with and without it, fewer
 * live activations with it, and a clear error when a block captures an activation.
 */
class CheckpointTest {
    private final CpuBackend backend = new CpuBackend(2);
    private final Scope model = Scope.root(backend, "model");
    // A tiny U-Net-like stack: ResBlock (GN, SiLU, conv + LoRA, time embedding, residual), then an
    // attention block over the pixels, then a ResBlock containing a nested checkpointed block.
    private final Tensor x = randn(model, "x", 1, 1, 2, 8, 4, 4).requireGrad();
    private final Tensor emb = randn(model, "emb", 2, 1, 2, 16).requireGrad();
    private final Tensor gamma = param(model, "gamma", 3, 0.1, 8);
    private final Tensor beta = param(model, "beta", 4, 0.1, 8);
    private final Tensor conv = randn(model, "conv", 5, 0.2, 8, 8, 3, 3);
    private final Tensor down = param(model, "down", 6, 0.2, 2, 8, 3, 3);
    private final Tensor up = param(model, "up", 7, 0.3, 8, 2, 1, 1);
    private final Tensor embW = param(model, "embW", 8, 0.3, 8, 16);
    private final Tensor qkv = param(model, "qkv", 9, 0.3, 24, 8);
    private final Tensor out = param(model, "out", 10, 0.3, 8, 8);

    @AfterEach
    void close() {
        model.close();
        assertEquals(0, backend.liveTensors());
        backend.close();
    }

    private Tensor resBlock(Functional f, Tensor h, Tensor e) {
        Tensor a = f.silu(f.groupNorm(h, gamma, beta, 4, 1e-5));                       // (N, C, H, W)
        Tensor c = f.addScaled(f.conv2d(a, conv, null, 1, 1),
                f.conv2d(f.conv2d(a, down, null, 1, 1), up, null, 1, 0), 0.5);          // + LoRA
        Tensor t = f.reshape(f.linear(f.silu(e), embW, null), e.dim(0), 8, 1, 1);     // (N, C, 1, 1)
        return f.add(f.add(c, t), h);
    }

    private Tensor attnBlock(Functional f, Tensor h) {
        int n = h.dim(0);
        Tensor tokens = f.permute(f.reshape(h, n, 8, 16), 0, 2, 1);                    // (N, T, C)
        List<Tensor> parts = f.chunk(f.linear(tokens, qkv, null), 3, -1);
        Tensor o = f.attention(f.splitHeads(parts.get(0), 2), f.splitHeads(parts.get(1), 2),
                f.splitHeads(parts.get(2), 2), false);
        Tensor proj = f.linear(f.mergeHeads(o), out, null);                            // (N, T, C)
        return f.add(f.reshape(f.permute(proj, 0, 2, 1), n, 8, 4, 4), h);
    }

    private Tensor forward(Functional f, boolean checkpoint) {
        Tensor h1 = f.checkpoint("res1", checkpoint, (g, in) -> resBlock(g, in.get(0), in.get(1)), x, emb);
        Tensor h2 = f.checkpoint("attn", checkpoint, (g, in) -> attnBlock(g, in.get(0)), h1);
        Tensor h3 = f.checkpoint("outer", checkpoint, (g, in) -> {
            Tensor inner = g.checkpoint("inner", checkpoint, (k, i2) -> resBlock(k, i2.get(0), i2.get(1)),
                    in.get(0), in.get(1));
            return g.add(inner, in.get(0));
        }, h2, emb);
        return f.add(f.mul(h3, h1), x);    // h1 and x feed later ops too, so their gradients have several parts
    }

    private List<float[]> run(boolean checkpoint, int[] liveAfterForward) {
        List<Tensor> leaves = List.of(x, emb, gamma, beta, down, up, embW, qkv, out);
        for (Tensor t : leaves) {
            t.zeroGrad();
        }
        List<float[]> result = new ArrayList<>();
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            Tensor y = forward(f, checkpoint);
            liveAfterForward[0] = step.liveTensors();
            result.add(y.toHost());
            f.backward(y, randn(step, "seed", 11, 1, 2, 8, 4, 4));
        }
        for (Tensor t : leaves) {
            result.add(t.grad().toHost());
        }
        return result;
    }

    @Test
    void gradientsAreIdenticalWithAndWithoutCheckpointing() {
        int[] livePlain = new int[1];
        int[] liveCheckpointed = new int[1];
        List<float[]> plain = run(false, livePlain);
        List<float[]> checkpointed = run(true, liveCheckpointed);
        String[] names = {"output", "x", "emb", "gamma", "beta", "down", "up", "embW", "qkv", "out"};
        for (int i = 0; i < plain.size(); i++) {
            assertArrayEquals(plain.get(i), checkpointed.get(i), names[i]);
            float max = 0;
            for (float v : plain.get(i)) {
                max = Math.max(max, Math.abs(v));
            }
            assertTrue(max > 0, names[i] + " is all zero: the comparison would prove nothing");
        }
        assertTrue(liveCheckpointed[0] * 3 < livePlain[0],
                "checkpointing keeps few activations: " + liveCheckpointed[0] + " vs " + livePlain[0]);
    }

    @Test
    void checkpointedGradientsMatchFiniteDifferences() {
        GradAssert.assertGradients("checkpointed resBlock", model,
                (f, in) -> f.checkpoint("res", true, (g, i2) -> resBlock(g, i2.get(0), i2.get(1)), in.get(0), in.get(1)),
                x, emb, gamma, down, up);
    }

    @Test
    void capturingAnActivationInsteadOfPassingItFails() {
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            Tensor h = f.silu(x);
            Tensor y = f.checkpoint("leaky", true, (g, in) -> g.mul(in.get(0), h), x);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> f.backward(f.sum(y)));
            assertTrue(e.getMessage().contains("'leaky'"), e.getMessage());
        }
    }
}
