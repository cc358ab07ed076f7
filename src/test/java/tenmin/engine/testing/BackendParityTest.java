package tenmin.engine.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.testing.Numerics;

/**
 * Op-by-op parity of a backend under test with a reference backend (the cpu backend) on the same host
 * data: every kernel of the {@link Backend} contract, forward and backward, one dynamic test each.
 *
 * <p>Subclass it for a new backend: {@link #reference()} and {@link #candidate()} create the two,
 * {@link #dtype()} chooses the compute dtype of the inputs (inputs are rounded to it on the host
 * first, so both backends see identical values) and {@link #tolerance()} the allowed
 * {@code max|a-b| / max|ref|} per output. Outputs are compared after {@code toHost}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendParityTest {
    private Backend reference;
    private Backend candidate;

    /** The backend whose results count as right. */
    protected abstract Backend reference();

    /** The backend under test. */
    protected abstract Backend candidate();

    /** Floating dtype of the inputs (F32 by default). */
    protected DType dtype() {
        return DType.F32;
    }

    /** Allowed relative difference {@code max|a-b| / max|ref|} of every output. */
    protected abstract double tolerance();

    @BeforeAll
    void start() {
        reference = reference();
        candidate = candidate();
    }

    @AfterAll
    void stop() {
        reference.close();
        candidate.close();
    }

    /** One op: input shapes (floating, random N(0,1)) and what to compute from them. */
    private record Case(String name, Shape[] inputs, BiFunction<Ops, Tensor[], List<Tensor>> body) {
    }

    /** A backend and a scope, so cases read {@code o.be().linear(o.s(), ...)}. */
    private record Ops(Backend be, Scope s) {
    }

    private static Shape[] shapes(int[]... dims) {
        Shape[] out = new Shape[dims.length];
        for (int i = 0; i < dims.length; i++) {
            out[i] = Shape.of(dims[i]);
        }
        return out;
    }

    private static Case c(String name, int[][] shapes, BiFunction<Ops, Tensor[], List<Tensor>> body) {
        return new Case(name, shapes(shapes), body);
    }

    private static List<Tensor> grads(LayerGrads g) {
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : new Tensor[] {g.dx(), g.dWeight(), g.dBias()}) {
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }

    private static List<Case> cases() {
        List<Case> cases = new ArrayList<>();
        int[][] x23 = {{2, 3, 5}};
        cases.add(c("linear", new int[][] {{2, 3, 5}, {4, 5}, {4}}, (o, t) -> List.of(o.be().linear(o.s(), t[0], t[1], t[2]))));
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int[] a = ta ? new int[] {3, 7, 6} : new int[] {3, 6, 7};
                int[] b = tb ? new int[] {3, 5, 7} : new int[] {3, 7, 5};
                cases.add(c("matmul transA=" + ta + " transB=" + tb, new int[][] {a, b},
                        (o, t) -> List.of(o.be().matmul(o.s(), t[0], t[1], ta, tb))));
            }
        }
        cases.add(c("matmul shared b", new int[][] {{3, 6, 7}, {7, 5}}, (o, t) -> List.of(o.be().matmul(o.s(), t[0], t[1], false, false))));
        for (int[] ksp : new int[][] {{3, 1, 1}, {3, 2, 1}, {1, 1, 0}}) {
            String g = "k" + ksp[0] + " s" + ksp[1] + " p" + ksp[2];
            int[][] in = {{2, 3, 8, 6}, {4, 3, ksp[0], ksp[0]}, {4}};
            cases.add(c("convolution " + g, in, (o, t) -> List.of(o.be().convolution(o.s(), t[0], t[1], t[2], ksp[1], ksp[2]))));
            int oh = (8 + 2 * ksp[2] - ksp[0]) / ksp[1] + 1;
            int ow = (6 + 2 * ksp[2] - ksp[0]) / ksp[1] + 1;
            cases.add(c("convolutionBackward " + g, new int[][] {{2, 3, 8, 6}, {4, 3, ksp[0], ksp[0]}, {2, 4, oh, ow}},
                    (o, t) -> grads(o.be().convolutionBackward(o.s(), t[2], t[0], t[1], ksp[1], ksp[2], OutputMask.ALL))));
        }
        cases.add(c("groupNorm + backward", new int[][] {{2, 8, 3, 3}, {8}, {8}, {2, 8, 3, 3}}, (o, t) -> {
            NormResult r = o.be().groupNorm(o.s(), t[0], t[1], t[2], 4, 1e-5);
            List<Tensor> out = new ArrayList<>(List.of(r.y()));
            out.addAll(grads(o.be().groupNormBackward(o.s(), t[3], t[0], r, t[1], 4, OutputMask.ALL)));
            return out;
        }));
        cases.add(c("layerNorm + backward", new int[][] {{2, 5, 8}, {8}, {8}, {2, 5, 8}}, (o, t) -> {
            NormResult r = o.be().layerNorm(o.s(), t[0], t[1], t[2], 1e-5);
            List<Tensor> out = new ArrayList<>(List.of(r.y()));
            out.addAll(grads(o.be().layerNormBackward(o.s(), t[3], t[0], r, t[1], OutputMask.ALL)));
            return out;
        }));
        int[][] act = {{3, 7}, {3, 7}};
        cases.add(c("silu + backward", act, (o, t) -> List.of(o.be().silu(o.s(), t[0]), o.be().siluBackward(o.s(), t[1], t[0]))));
        for (GeluApproximation a : GeluApproximation.values()) {
            cases.add(c("gelu " + a + " + backward", act,
                    (o, t) -> List.of(o.be().gelu(o.s(), t[0], a), o.be().geluBackward(o.s(), t[1], t[0], a))));
        }
        cases.add(c("quickGelu + backward", act,
                (o, t) -> List.of(o.be().quickGelu(o.s(), t[0]), o.be().quickGeluBackward(o.s(), t[1], t[0]))));
        for (boolean causal : new boolean[] {false, true}) {
            int tk = causal ? 9 : 11;
            cases.add(c("attention + backward causal=" + causal,
                    new int[][] {{2, 3, 9, 8}, {2, 3, tk, 8}, {2, 3, tk, 8}, {2, 3, 9, 8}}, (o, t) -> {
                        AttentionResult r = o.be().attention(o.s(), t[0], t[1], t[2], causal, 0.35);
                        AttentionGrads g = o.be().attentionBackward(o.s(), t[3], t[0], t[1], t[2], r, causal, 0.35);
                        return List.of(r.out(), r.logSumExp(), g.dq(), g.dk(), g.dv());
                    }));
        }
        cases.add(c("upsampleNearest2x + backward", new int[][] {{2, 3, 4, 5}, {2, 3, 8, 10}},
                (o, t) -> List.of(o.be().upsampleNearest2x(o.s(), t[0]), o.be().upsampleNearest2xBackward(o.s(), t[1]))));
        cases.add(c("pad2d", new int[][] {{2, 3, 4, 5}}, (o, t) -> List.of(o.be().pad2d(o.s(), t[0], 0, 1, 2, 1))));
        cases.add(c("permute", x23, (o, t) -> List.of(o.be().permute(o.s(), t[0], 2, 0, 1))));
        cases.add(c("narrow + backward", new int[][] {{2, 6, 5}, {2, 2, 5}}, (o, t) -> List.of(o.be().narrow(o.s(), t[0], 1, 3, 2),
                o.be().narrowBackward(o.s(), t[1], Shape.of(2, 6, 5), 1, 3))));
        cases.add(c("cat", new int[][] {{2, 3, 5}, {2, 1, 5}}, (o, t) -> List.of(o.be().cat(o.s(), List.of(t[0], t[1]), 1))));
        cases.add(c("expand", new int[][] {{3, 1}}, (o, t) -> List.of(o.be().expand(o.s(), t[0], Shape.of(2, 3, 4)))));
        cases.add(c("cast to bf16 and f16", x23, (o, t) -> List.of(o.be().cast(o.s(), t[0], DType.BF16),
                o.be().cast(o.s(), t[0], DType.F16))));
        cases.add(c("add, mul, div with broadcasting", new int[][] {{2, 3, 4}, {3, 1}}, (o, t) -> List.of(
                o.be().add(o.s(), t[0], t[1], -0.5), o.be().mul(o.s(), t[0], t[1]),
                o.be().div(o.s(), t[0], o.be().affine(o.s(), o.be().unary(o.s(), Unary.ABS, t[1]), 1, 0.5)))));
        cases.add(c("affine, clamp", x23, (o, t) -> List.of(o.be().affine(o.s(), t[0], 1.5, -0.25),
                o.be().clamp(o.s(), t[0], -0.5, 0.75))));
        for (Unary u : Unary.values()) {
            cases.add(c("unary " + u, x23, (o, t) -> {
                Tensor arg = switch (u) {
                    case LOG, SQRT, RSQRT -> o.be().affine(o.s(), o.be().unary(o.s(), Unary.ABS, t[0]), 1, 0.1);
                    default -> t[0];
                };
                return List.of(o.be().unary(o.s(), u, arg));
            }));
        }
        cases.add(c("sum, mean", x23, (o, t) -> List.of(o.be().sum(o.s(), t[0], new int[] {0, 2}, false),
                o.be().mean(o.s(), t[0], new int[] {-1}, true), o.be().sum(o.s(), t[0], new int[0], false))));
        cases.add(c("mseLoss + backward", new int[][] {{2, 3, 5}, {2, 3, 5}, {}}, (o, t) -> List.of(
                o.be().mseLoss(o.s(), t[0], t[1]), o.be().mseLossBackward(o.s(), t[2], t[0], t[1]))));
        cases.add(c("embedding + backward", new int[][] {{6, 4}, {2, 3, 4}}, (o, t) -> {
            Tensor ids = o.s().fromHost(new long[] {5, 0, 5, 2, 1, 3}, 2, 3);
            return List.of(o.be().embedding(o.s(), t[0], ids), o.be().embeddingBackward(o.s(), t[1], ids, 6));
        }));
        cases.add(c("sinusoidalEmbedding", new int[0][], (o, t) -> List.of(
                o.be().sinusoidalEmbedding(o.s(), o.s().fromHost(new long[] {0, 17, 999}, 3), 32))));
        cases.add(c("in place: axpy, scale, fill, copy", new int[][] {{4, 3}, {4, 3}}, (o, t) -> {
            Tensor y = o.be().affine(o.s(), t[0], 1, 0);
            o.be().axpyInto(y, -0.75, t[1]);
            Tensor z = o.be().affine(o.s(), t[1], 1, 0);
            o.be().scaleInto(z, 3);
            Tensor f = o.s().zeros(Shape.of(4, 3), t[0].dtype());
            o.be().fillInto(f, 0.5);
            Tensor c = o.s().zeros(Shape.of(12), t[0].dtype());
            o.be().copyInto(c, t[0]);
            return List.of(y, z, f, c);
        }));
        return cases;
    }

    @TestFactory
    List<DynamicTest> everyOpMatchesTheReference() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.name() + " [" + candidate.name() + " vs " + reference.name() + "]",
                    () -> compare(c)));
        }
        return tests;
    }

    private void compare(Case c) {
        Random r = new Random(c.name().hashCode());
        float[][] data = new float[c.inputs().length][];
        for (int i = 0; i < data.length; i++) {
            data[i] = new float[(int) c.inputs()[i].numel()];
            for (int j = 0; j < data[i].length; j++) {
                data[i][j] = (float) r.nextGaussian();
            }
        }
        List<float[]> want = run(reference, c, data);
        List<float[]> got = run(candidate, c, data);
        for (int i = 0; i < want.size(); i++) {
            Numerics.assertRelClose(c.name() + " output " + i, null, want.get(i), got.get(i), tolerance());
        }
    }

    private List<float[]> run(Backend be, Case c, float[][] data) {
        try (Scope s = Scope.root(be, "parity")) {
            Tensor[] in = new Tensor[data.length];
            for (int i = 0; i < data.length; i++) {
                in[i] = s.fromHost(data[i], c.inputs()[i], dtype());
            }
            List<float[]> out = new ArrayList<>();
            for (Tensor t : c.body().apply(new Ops(be, s), in)) {
                out.add(t.toHost());
            }
            return out;
        }
    }
}
