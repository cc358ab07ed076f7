package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static tenmin.engine.autograd.GradAssert.assertGradients;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;

/**
 * Every differentiable op of the facade against central finite differences on tiny shapes
 * (GradCheck: L = Σ y·R, fp32 forward, float64 sums). Each test also proves the op leaks nothing.
 */
class OpGradientTest {
    private static CpuBackend backend;
    private Scope root;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @BeforeEach
    void open() {
        root = Scope.root(backend, "test");
    }

    @AfterEach
    void close() {
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static Tensor in(List<Tensor> in, int i) {
        return in.get(i);
    }

    @Test
    void linearWithAndWithoutBias() {
        Tensor x = param(root, "x", 1, 1, 2, 3, 5);
        Tensor w = param(root, "w", 2, 0.5, 4, 5);
        Tensor b = param(root, "b", 3, 0.1, 4);
        assertGradients("linear", root, (f, t) -> f.linear(in(t, 0), in(t, 1), in(t, 2)), x, w, b);
        assertGradients("linear no bias", root, (f, t) -> f.linear(in(t, 0), in(t, 1), null), x, w);
    }

    @Test
    void matmulAllTransposesAndBatches() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                Tensor a = param(root, "a", 4, 1, ta ? 4 : 3, ta ? 3 : 4);
                Tensor b = param(root, "b", 5, 1, tb ? 5 : 4, tb ? 4 : 5);
                assertGradients("matmul " + ta + tb, root, (f, t) -> f.matmul(in(t, 0), in(t, 1), ta, tb), a, b);
                Tensor ba = param(root, "ba", 6, 1, 2, ta ? 4 : 3, ta ? 3 : 4);
                Tensor bb = param(root, "bb", 7, 1, 2, tb ? 5 : 4, tb ? 4 : 5);
                assertGradients("bmm " + ta + tb, root, (f, t) -> f.matmul(in(t, 0), in(t, 1), ta, tb), ba, bb);
                assertGradients("bmm shared " + ta + tb, root, (f, t) -> f.matmul(in(t, 0), in(t, 1), ta, tb), ba, b);
            }
        }
    }

    @Test
    void conv2dKernelSizesStridesPadding() {
        Tensor x = param(root, "x", 8, 1, 2, 3, 5, 6);
        Tensor w3 = param(root, "w3", 9, 0.3, 4, 3, 3, 3);
        Tensor w1 = param(root, "w1", 10, 0.5, 4, 3, 1, 1);
        Tensor b = param(root, "b", 11, 0.1, 4);
        assertGradients("conv3x3 s1 p1", root, (f, t) -> f.conv2d(in(t, 0), in(t, 1), in(t, 2), 1, 1), x, w3, b);
        assertGradients("conv3x3 s2 p1", root, (f, t) -> f.conv2d(in(t, 0), in(t, 1), in(t, 2), 2, 1), x, w3, b);
        assertGradients("conv3x3 s2 p0", root, (f, t) -> f.conv2d(in(t, 0), in(t, 1), null, 2, 0), x, w3);
        assertGradients("conv1x1", root, (f, t) -> f.conv2d(in(t, 0), in(t, 1), in(t, 2), 1, 0), x, w1, b);
    }

    @Test
    void groupNormWithAffine() {
        Tensor x = param(root, "x", 12, 1, 2, 6, 3, 2);
        Tensor g = param(root, "gamma", 13, 0.2, 6);
        Tensor b = param(root, "beta", 14, 0.2, 6);
        assertGradients("groupNorm", root, (f, t) -> f.groupNorm(in(t, 0), in(t, 1), in(t, 2), 3, 1e-5), x, g, b);
        assertGradients("groupNorm plain", root, (f, t) -> f.groupNorm(in(t, 0), null, null, 2, 1e-6), x);
    }

    @Test
    void layerNormWithAffine() {
        Tensor x = param(root, "x", 15, 1, 2, 3, 8);
        Tensor g = param(root, "gamma", 16, 0.2, 8);
        Tensor b = param(root, "beta", 17, 0.2, 8);
        assertGradients("layerNorm", root, (f, t) -> f.layerNorm(in(t, 0), in(t, 1), in(t, 2), 1e-5), x, g, b);
    }

    @Test
    void activations() {
        Tensor x = param(root, "x", 18, 1.5, 3, 7);
        assertGradients("silu", root, (f, t) -> f.silu(in(t, 0)), x);
        assertGradients("gelu", root, (f, t) -> f.gelu(in(t, 0)), x);
        assertGradients("geluTanh", root, (f, t) -> f.geluTanh(in(t, 0)), x);
        assertGradients("quickGelu", root, (f, t) -> f.quickGelu(in(t, 0)), x);
        Tensor h = param(root, "h", 19, 1, 2, 3, 8);
        assertGradients("geglu", root, (f, t) -> f.geglu(in(t, 0)), h);
    }

    @Test
    void attentionSelfCrossAndCausal() {
        Tensor q = param(root, "q", 20, 1, 2, 2, 5, 4);
        Tensor k = param(root, "k", 21, 1, 2, 2, 5, 4);
        Tensor v = param(root, "v", 22, 1, 2, 2, 5, 3);
        assertGradients("attention", root, (f, t) -> f.attention(in(t, 0), in(t, 1), in(t, 2), false), q, k, v);
        assertGradients("causal attention", root, (f, t) -> f.attention(in(t, 0), in(t, 1), in(t, 2), true), q, k, v);
        Tensor kc = param(root, "kc", 23, 1, 2, 2, 7, 4);
        Tensor vc = param(root, "vc", 24, 1, 2, 2, 7, 4);
        assertGradients("cross attention", root, (f, t) -> f.attention(in(t, 0), in(t, 1), in(t, 2), false, 0.3), q, kc, vc);
    }

    @Test
    void attentionOnUnsplitHeads() {
        Tensor q = param(root, "qh", 28, 1, 2, 5, 8);
        Tensor k = param(root, "kh", 29, 1, 2, 6, 8);
        Tensor v = param(root, "vh", 30, 1, 2, 6, 8);
        assertGradients("attention heads", root, (f, t) -> f.attentionHeads(in(t, 0), in(t, 1), in(t, 2), 2, false),
                q, k, v);
        Tensor kc = param(root, "khc", 31, 1, 2, 5, 8);
        Tensor vc = param(root, "vhc", 32, 1, 2, 5, 8);
        assertGradients("causal attention heads", root,
                (f, t) -> f.attentionHeads(in(t, 0), in(t, 1), in(t, 2), 4, true), q, kc, vc);
    }

    @Test
    void loraBranchAddedToALayerOutput() {
        Tensor y = param(root, "ly", 36, 1, 2, 3, 5);
        Tensor x = param(root, "lx", 37, 1, 2, 3, 6);
        Tensor down = param(root, "ld", 38, 1, 2, 6);
        Tensor up = param(root, "lu", 39, 1, 5, 2);
        assertGradients("loraAdd", root, (f, t) -> f.loraAdd(in(t, 0), in(t, 1), in(t, 2), in(t, 3), 0.7), y, x, down, up);
    }

    @Test
    void attentionLongerThanOneQueryBlock() {
        Tensor q = param(root, "q", 25, 1, 1, 1, 70, 2);
        Tensor k = param(root, "k", 26, 1, 1, 1, 70, 2);
        Tensor v = param(root, "v", 27, 1, 1, 1, 70, 2);
        assertGradients("attention 70 tokens", root, (f, t) -> f.attention(in(t, 0), in(t, 1), in(t, 2), true), q, k, v);
    }

    @Test
    void elementwiseWithBroadcasting() {
        Tensor a = param(root, "a", 28, 1, 2, 3, 2, 2);
        Tensor b = param(root, "b", 29, 1, 2, 3, 1, 1);
        Tensor c = param(root, "c", 30, 1, 2, 2);
        assertGradients("add", root, (f, t) -> f.add(in(t, 0), in(t, 1)), a, b);
        assertGradients("sub", root, (f, t) -> f.sub(in(t, 0), in(t, 1)), a, c);
        assertGradients("addScaled", root, (f, t) -> f.addScaled(in(t, 0), in(t, 1), 0.37), a, b);
        assertGradients("mul", root, (f, t) -> f.mul(in(t, 0), in(t, 1)), a, b);
        assertGradients("scale", root, (f, t) -> f.scale(in(t, 0), -1.7), a);
        assertGradients("affine", root, (f, t) -> f.affine(in(t, 0), 2.5, 0.3), a);
        Tensor pos = root.fromHost(new float[] {1.5f, 2f, 0.7f, 1.2f}, 2, 2).named("pos").requireGrad();
        assertGradients("div", root, (f, t) -> f.div(in(t, 0), in(t, 1)), a, pos);
        assertGradients("self add", root, (f, t) -> f.add(in(t, 0), in(t, 0)), a);
    }

    @Test
    void unaryFunctions() {
        Tensor x = param(root, "x", 31, 0.8, 2, 5);
        float[] positive = {0.5f, 1.3f, 2.2f, 0.9f, 1.7f, 3.1f, 0.7f, 1.1f, 2.6f, 0.6f};
        Tensor p = root.fromHost(positive, 2, 5).named("p").requireGrad();
        for (Unary op : Unary.values()) {
            Tensor arg = switch (op) {
                case LOG, SQRT, RSQRT, ABS -> p;
                default -> x;
            };
            assertGradients(op.name(), root, (f, t) -> f.unary(op, in(t, 0)), arg);
        }
    }

    @Test
    void layoutOps() {
        Tensor x = param(root, "x", 32, 1, 2, 3, 4);
        Tensor y = param(root, "y", 33, 1, 2, 2, 4);
        assertGradients("reshape", root, (f, t) -> f.mul(f.reshape(in(t, 0), 4, -1), f.reshape(in(t, 0), 4, 6)), x);
        assertGradients("permute", root, (f, t) -> f.permute(in(t, 0), 2, 0, 1), x);
        assertGradients("transpose", root, (f, t) -> f.transpose(in(t, 0), -1, 0), x);
        assertGradients("narrow", root, (f, t) -> f.narrow(in(t, 0), 1, 1, 2), x);
        assertGradients("split", root, (f, t) -> {
            List<Tensor> parts = f.split(in(t, 0), 2, 1, 3);
            return f.mul(f.sum(parts.get(0), new int[] {2}, true), parts.get(1));
        }, x);
        assertGradients("cat", root, (f, t) -> f.cat(1, in(t, 0), in(t, 1)), x, y);
        assertGradients("expand", root, (f, t) -> f.expand(in(t, 0), Shape.of(3, 2, 2, 4)), y);
    }

    @Test
    void imageOps() {
        Tensor x = param(root, "x", 34, 1, 1, 2, 3, 3);
        assertGradients("pad2d", root, (f, t) -> f.mul(f.pad2d(in(t, 0), 0, 1, 0, 1), f.pad2d(in(t, 0), 1, 0, 1, 0)), x);
        assertGradients("upsample", root, (f, t) -> f.upsampleNearest2x(in(t, 0)), x);
    }

    @Test
    void reductionsAndLoss() {
        Tensor x = param(root, "x", 35, 1, 2, 3, 4);
        Tensor target = param(root, "target", 36, 1, 2, 3, 4);
        assertGradients("sum all", root, (f, t) -> f.sum(in(t, 0)), x);
        assertGradients("sum dims", root, (f, t) -> f.sum(in(t, 0), new int[] {0, 2}, false), x);
        assertGradients("mean all", root, (f, t) -> f.mean(f.mul(in(t, 0), in(t, 0))), x);
        assertGradients("mean keep", root, (f, t) -> f.mean(in(t, 0), new int[] {-1}, true), x);
        assertGradients("mse", root, (f, t) -> f.mseLoss(in(t, 0), in(t, 1)), x, target);
    }

    @Test
    void embeddingWithRepeatedIds() {
        Tensor w = param(root, "w", 37, 1, 5, 3);
        Tensor ids = root.fromHost(new long[] {4, 0, 4, 2, 1, 4}, 2, 3);
        assertGradients("embedding", root, (f, t) -> f.embedding(in(t, 0), ids), w);
    }

    @Test
    void frozenInputsGetNoGradient() {
        Tensor x = randn(root, "x", 38, 1, 3, 5);
        Tensor w = param(root, "w", 39, 1, 4, 5);
        assertGradients("frozen x", root, (f, t) -> f.linear(in(t, 0), in(t, 1), null), x, w);
        assertEquals(null, x.grad());
    }
}
