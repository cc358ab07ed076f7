package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.testing.Reference.d;
import static tenmin.testing.Reference.f;
import static tenmin.testing.Reference.values;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Half;
import tenmin.formats.StDType;
import tenmin.testing.Numerics;
import tenmin.testing.Reference;

/**
 * Each ATen op the torch backend uses, on the CPU libtorch, against small computations written here
 * from the definitions (naive loops in double, finite differences for the backward kernels).
 */
@Tag("torch")
class TorchOpsTest {
    private static final double TOL = 1e-5;
    private static TorchBackend be;
    private Scope s;

    @BeforeAll
    static void load() {
        be = new TorchBackend(TorchTesting.libTorchOrSkip(), Device.CPU);
    }

    @BeforeEach
    void open() {
        s = Scope.root(be, "test");
    }

    @AfterEach
    void close() {
        s.close();
        assertEquals(0, be.liveTensors(), "tensors left open");
        assertEquals(0, be.liveBytes(), "bytes left open");
    }

    private Tensor up(float[] v, int... dims) {
        return s.fromHost(v, Shape.of(dims), DType.F32);
    }

    private static void close(String name, double[] expected, Tensor actual) {
        Numerics.assertClose(name, actual.shape().dimsLong(), f(expected), actual.toHost(), 1e-6, TOL);
    }

    @Test
    void hostCopiesRoundTripAndRoundBf16ToNearestEven() {
        float[] v = {1.0f, 1.00390625f, 1.01171875f, -3.3f, 65504f, 1e-3f};
        assertArrayEquals(v, up(v, 2, 3).toHost());
        float[] bf = s.fromHost(v, Shape.of(6), DType.BF16).toHost();
        float[] hf = s.fromHost(v, Shape.of(6), DType.F16).toHost();
        for (int i = 0; i < v.length; i++) {
            assertEquals(Half.roundTo(v[i], StDType.BF16), bf[i], "bf16 " + v[i]);
            assertEquals(Half.roundTo(v[i], StDType.F16), hf[i], "f16 " + v[i]);
        }
        long[] ids = {3, -1, Long.MAX_VALUE};
        assertArrayEquals(ids, s.fromHost(ids, 3).toHostLongs());
        try (Arena a = Arena.ofConfined()) {
            MemorySegment raw = a.allocate(4);
            raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, Half.f32ToBf16(2.5f));
            raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2, Half.f32ToBf16(-0.125f));
            assertArrayEquals(new float[] {2.5f, -0.125f}, s.fromHostBytes(raw, Shape.of(2), DType.BF16).toHost());
        }
        Tensor c = be.cast(s, up(v, 6), DType.BF16);
        assertEquals(DType.BF16, c.dtype());
        assertArrayEquals(bf, c.toHost());
        assertArrayEquals(new float[] {7, 7}, s.full(Shape.of(2), DType.F32, 7).toHost());
    }

    @Test
    void matmulVariantsMatchNaiveProducts() {
        int m = 3;
        int k = 4;
        int n = 5;
        double[] a = d(values(1, m * k));
        double[] b = d(values(2, k * n));
        Tensor ta = up(f(a), m, k);
        Tensor tb = up(f(b), k, n);
        close("mm", Reference.mm(a, b, m, k, n), be.matmul(s, ta, tb, false, false));
        Tensor taT = up(f(Reference.t(a, m, k)), k, m);
        Tensor tbT = up(f(Reference.t(b, k, n)), n, k);
        close("mm transA transB", Reference.mm(a, b, m, k, n), be.matmul(s, taT, tbT, true, true));
        // batched (2, M, K) x (K, N), (2, M, K) x (2, K, N), and a transposed 3-D a with a shared b
        double[] a3 = d(values(3, 2 * m * k));
        double[] b3 = d(values(4, 2 * k * n));
        double[] shared = new double[2 * m * n];
        double[] batched = new double[2 * m * n];
        double[] a3t = new double[a3.length];
        for (int i = 0; i < 2; i++) {
            double[] ai = java.util.Arrays.copyOfRange(a3, i * m * k, (i + 1) * m * k);
            double[] bi = java.util.Arrays.copyOfRange(b3, i * k * n, (i + 1) * k * n);
            System.arraycopy(Reference.mm(ai, b, m, k, n), 0, shared, i * m * n, m * n);
            System.arraycopy(Reference.mm(ai, bi, m, k, n), 0, batched, i * m * n, m * n);
            System.arraycopy(Reference.t(ai, m, k), 0, a3t, i * m * k, m * k);
        }
        close("bmm shared b", shared, be.matmul(s, up(f(a3), 2, m, k), tb, false, false));
        close("bmm", batched, be.matmul(s, up(f(a3), 2, m, k), up(f(b3), 2, k, n), false, false));
        close("bmm transA shared b", shared, be.matmul(s, up(f(a3t), 2, k, m), tb, true, false));
        // linear: x (2, M, K) · wᵀ + bias, w (N, K)
        double[] w = d(values(5, n * k));
        double[] bias = d(values(6, n));
        double[] lin = Reference.linear(a3, w, bias, 2 * m, k, n);
        close("linear", lin, be.linear(s, up(f(a3), 2, m, k), up(f(w), n, k), up(f(bias), n)));
        assertThrows(IllegalArgumentException.class, () -> be.matmul(s, ta, ta, false, false));
    }

    @Test
    void bf16MatmulsAndConvolutionsAccumulateInFp32() {
        // A bf16 accumulator stalls at 256 when adding ones (257 is not representable); fp32 reaches the count.
        Tensor a = s.full(Shape.of(1, 4096), DType.BF16, 1.0);
        Tensor w = s.full(Shape.of(1, 4096), DType.BF16, 1.0);
        assertEquals(4096f, be.linear(s, a, w, null).item());
        assertEquals(4096f, be.matmul(s, a, w, false, true).item());
        Tensor x = s.full(Shape.of(1, 1024, 1, 1), DType.BF16, 1.0);
        Tensor k = s.full(Shape.of(1, 1024, 1, 1), DType.BF16, 1.0);
        assertEquals(1024f, be.convolution(s, x, k, null, 1, 0).item());
        assertEquals(4096f, be.sum(s, a, new int[0], false).item());
    }

    @Test
    void convolutionAndItsBackwardMatchNaiveLoops() {
        int n = 2;
        int c = 3;
        int h = 5;
        int w = 4;
        int o = 4;
        int k = 3;
        for (int stride : new int[] {1, 2}) {
            double[] x = d(values(10, n * c * h * w));
            double[] wt = d(values(11, o * c * k * k));
            double[] bias = d(values(12, o));
            double[] y = Reference.conv(x, wt, bias, n, c, h, w, o, k, stride, 1);
            Tensor tx = up(f(x), n, c, h, w);
            Tensor tw = up(f(wt), o, c, k, k);
            Tensor ty = be.convolution(s, tx, tw, up(f(bias), o), stride, 1);
            close("conv stride " + stride, y, ty);
            double[] g = d(values(13, y.length));
            LayerGrads grads = be.convolutionBackward(s, up(f(g), ty.shape().dims()), tx, tw, stride, 1, OutputMask.ALL);
            double[] dx = Reference.numericGrad(p -> Reference.dot(g, Reference.conv(p, wt, bias, n, c, h, w, o, k, stride, 1)), x, 1e-4);
            double[] dw = Reference.numericGrad(p -> Reference.dot(g, Reference.conv(x, p, bias, n, c, h, w, o, k, stride, 1)), wt, 1e-4);
            double[] db = Reference.numericGrad(p -> Reference.dot(g, Reference.conv(x, wt, p, n, c, h, w, o, k, stride, 1)), bias, 1e-4);
            close("conv dx", dx, grads.dx());
            close("conv dWeight", dw, grads.dWeight());
            close("conv dBias", db, grads.dBias());
        }
        LayerGrads only = be.convolutionBackward(s, s.zeros(Shape.of(n, o, h, w), DType.F32),
                s.zeros(Shape.of(n, c, h, w), DType.F32), s.zeros(Shape.of(o, c, k, k), DType.F32), 1, 1,
                OutputMask.INPUT_ONLY);
        assertTrue(only.dWeight() == null && only.dBias() == null && only.dx() != null);
    }

    /**
     * {@code linearGeglu}: the split form CUDA takes (value and gate as GEMMs on the weight's row blocks) and the
     * default (linear, then GEGLU on the halves) both equal {@code a · gelu(g)} of the definition, with and without a
     * bias.
     */
    @Test
    void linearGegluMatchesTheDefinitionSplitOrNot() {
        int rows = 6;
        int k = 5;
        int h = 4;
        double[] x = d(values(11, rows * k));
        double[] w = d(values(12, 2 * h * k));
        double[] bias = d(values(13, 2 * h));
        for (boolean withBias : new boolean[] {true, false}) {
            double[] proj = Reference.linear(x, w, withBias ? bias : null, rows, k, 2 * h);
            double[] expected = new double[rows * h];
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < h; j++) {
                    expected[r * h + j] = proj[r * 2 * h + j] * Reference.gelu(proj[r * 2 * h + h + j]);
                }
            }
            for (boolean split : new boolean[] {true, false}) {
                be.preferInferenceKernels(split);
                Tensor y = be.linearGeglu(s, up(f(x), 2, 3, k), up(f(w), 2 * h, k), withBias ? up(f(bias), 2 * h) : null);
                assertEquals(Shape.of(2, 3, h), y.shape());
                close("linearGeglu split=" + split + " bias=" + withBias, expected, y);
            }
        }
        be.preferInferenceKernels(false);
    }

    /**
     * The fp32 group norm for inference on 16-bit activations: the statistics + batch-norm path (what CUDA takes)
     * and the default (widen, group norm, narrow) both give the definition in double, rounded once to the input's
     * dtype (within one unit of its last place), also for groups whose mean is 20 times their spread; on fp32
     * activations (the VAE) both are within float rounding of it.
     */
    @Test
    void groupNormInference32MatchesTheDefinitionRoundedOnceOnBothPaths() {
        int n = 2;
        int c = 8;
        int sp = 15;
        int groups = 4;
        double eps = 1e-5;
        double[] x = d(values(5, n * c * sp));
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * 0.5 + (i / (c / groups * sp) % 2 == 0 ? 10.0 : -1.0);  // alternate groups: mean 10 or -1
        }
        double[] gamma = d(values(6, c));
        double[] beta = d(values(7, c));
        for (DType dtype : new DType[] {DType.BF16, DType.F16, DType.F32}) {
            StDType st = dtype == DType.BF16 ? StDType.BF16 : dtype == DType.F16 ? StDType.F16 : null;
            double[] rounded = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                rounded[i] = st == null ? (float) x[i] : Half.roundTo((float) x[i], st);
            }
            double[] expected = Reference.groupNorm(rounded, gamma, beta, n, c, sp, groups, eps);
            Tensor tx = s.fromHost(f(rounded), Shape.of(n, c, 3, 5), dtype);
            Tensor g32 = up(f(gamma), c);
            Tensor b32 = up(f(beta), c);
            for (boolean statistics : new boolean[] {true, false}) {
                be.preferInferenceKernels(statistics);
                Tensor y = be.groupNormInference32(s, tx, g32, b32, groups, eps);
                assertEquals(statistics, be.groupNormByStatistics(), "the path ran (libtorch did not refuse it)");
                assertEquals(dtype, y.dtype());
                assertEquals(tx.shape(), y.shape());
                float[] got = y.toHost();
                for (int i = 0; i < got.length; i++) {
                    if (st == null) {   // fp32 (the VAE): float rounding of the statistics and of the fused terms
                        assertEquals(expected[i], got[i], 1e-5 * Math.max(1, Math.abs(expected[i])) + 4 * Math.ulp(10.0f),
                                "fp32 statistics=" + statistics + " [" + i + "]");
                        continue;
                    }
                    float want = Half.roundTo((float) expected[i], st);
                    // one unit in the last place of the result, plus fp32 rounding of the fused terms x·a and b
                    // of size ~10 (a result near zero keeps their absolute error)
                    double ulp = Math.abs(Half.roundTo(Math.nextUp(Math.abs(want)) * 1.0078125f, st) - Math.abs(want));
                    assertTrue(Math.abs(got[i] - want) <= ulp + 4 * Math.ulp(10.0f), dtype + " statistics=" + statistics
                            + " [" + i + "]: " + got[i] + " vs " + want + " (" + expected[i] + ")");
                }
            }
        }
        be.preferInferenceKernels(false);   // the CPU's default again
    }

    @Test
    void groupNormAndBackwardMatchDefinitionAndFiniteDifferences() {
        int n = 2;
        int c = 4;
        int sp = 6;
        int groups = 2;
        double eps = 1e-5;
        double[] x = d(values(20, n * c * sp));
        double[] gamma = d(values(21, c));
        double[] beta = d(values(22, c));
        Tensor tx = up(f(x), n, c, 2, 3);
        Tensor tg = up(f(gamma), c);
        NormResult r = be.groupNorm(s, tx, tg, up(f(beta), c), groups, eps);
        close("group norm", Reference.groupNorm(x, gamma, beta, n, c, sp, groups, eps), r.y());
        assertEquals(Shape.of(n, groups), r.mean().shape());
        double[] g = d(values(23, x.length));
        LayerGrads grads = be.groupNormBackward(s, up(f(g), n, c, 2, 3), tx, r, tg, groups, OutputMask.ALL);
        close("group norm dx", Reference.numericGrad(p -> Reference.dot(g, Reference.groupNorm(p, gamma, beta, n, c, sp, groups, eps)), x, 1e-4), grads.dx());
        close("group norm dGamma", Reference.numericGrad(p -> Reference.dot(g, Reference.groupNorm(x, p, beta, n, c, sp, groups, eps)), gamma, 1e-4), grads.dWeight());
        close("group norm dBeta", Reference.numericGrad(p -> Reference.dot(g, Reference.groupNorm(x, gamma, p, n, c, sp, groups, eps)), beta, 1e-4), grads.dBias());
    }

    @Test
    void layerNormAndBackwardMatchDefinitionAndFiniteDifferences() {
        int rows = 6;
        int c = 5;
        double eps = 1e-5;
        double[] x = d(values(30, rows * c));
        double[] gamma = d(values(31, c));
        double[] beta = d(values(32, c));
        Tensor tx = up(f(x), 2, 3, c);
        Tensor tg = up(f(gamma), c);
        NormResult r = be.layerNorm(s, tx, tg, up(f(beta), c), eps);
        close("layer norm", Reference.layerNorm(x, gamma, beta, rows, c, eps), r.y());
        assertEquals(Shape.of(2, 3, 1), r.mean().shape());
        double[] g = d(values(33, x.length));
        LayerGrads grads = be.layerNormBackward(s, up(f(g), 2, 3, c), tx, r, tg, OutputMask.ALL);
        close("layer norm dx", Reference.numericGrad(p -> Reference.dot(g, Reference.layerNorm(p, gamma, beta, rows, c, eps)), x, 1e-4), grads.dx());
        close("layer norm dGamma", Reference.numericGrad(p -> Reference.dot(g, Reference.layerNorm(x, p, beta, rows, c, eps)), gamma, 1e-4), grads.dWeight());
        close("layer norm dBeta", Reference.numericGrad(p -> Reference.dot(g, Reference.layerNorm(x, gamma, p, rows, c, eps)), beta, 1e-4), grads.dBias());
        NormResult plain = be.layerNorm(s, tx, null, null, eps);
        close("layer norm without affine", Reference.layerNorm(x, null, null, rows, c, eps), plain.y());
    }

    @Test
    void activationsAndTheirBackwardsMatchFormulas() {
        double[] x = d(values(40, 24));
        for (int i = 0; i < x.length; i++) {
            x[i] *= 4;
        }
        double[] g = d(values(41, 24));
        Tensor tx = up(f(x), 4, 6);
        Tensor tg = up(f(g), 4, 6);
        double[] silu = new double[x.length];
        double[] dsilu = new double[x.length];
        double[] gelu = new double[x.length];
        double[] dgelu = new double[x.length];
        double[] geluTanh = new double[x.length];
        double[] quick = new double[x.length];
        double[] dquick = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            double sig = 1 / (1 + Math.exp(-v));
            silu[i] = Reference.silu(v);
            dsilu[i] = g[i] * (sig + v * sig * (1 - sig));
            double cdf = 0.5 * (1 + Reference.erf(v / Math.sqrt(2)));
            gelu[i] = Reference.gelu(v);
            dgelu[i] = g[i] * (cdf + v * Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI));
            geluTanh[i] = Reference.geluTanh(v);
            double qs = 1 / (1 + Math.exp(-1.702 * v));
            quick[i] = Reference.quickGelu(v);
            dquick[i] = g[i] * (qs + 1.702 * v * qs * (1 - qs));
        }
        close("silu", silu, be.silu(s, tx));
        close("silu backward", dsilu, be.siluBackward(s, tg, tx));
        close("gelu", gelu, be.gelu(s, tx, Backend.GeluApproximation.NONE));
        close("gelu backward", dgelu, be.geluBackward(s, tg, tx, Backend.GeluApproximation.NONE));
        close("gelu tanh", geluTanh, be.gelu(s, tx, Backend.GeluApproximation.TANH));
        double[] dTanh = Reference.numericGrad(p -> {
            double acc = 0;
            for (int i = 0; i < p.length; i++) {
                acc += g[i] * Reference.geluTanh(p[i]);
            }
            return acc;
        }, x, 1e-5);
        close("gelu tanh backward", dTanh, be.geluBackward(s, tg, tx, Backend.GeluApproximation.TANH));
        close("quick gelu", quick, be.quickGelu(s, tx));
        close("quick gelu backward", dquick, be.quickGeluBackward(s, tg, tx));
    }

    @Test
    void attentionAndBackwardMatchSoftmaxDefinition() {
        int n = 1;
        int heads = 2;
        int tq = 5;
        int tk = 7;
        int dd = 8;
        for (boolean causal : new boolean[] {false, true}) {
            int tkc = causal ? tq : tk;
            double scale = 1 / Math.sqrt(dd);
            double[] q = d(values(50, n * heads * tq * dd));
            double[] k = d(values(51, n * heads * tkc * dd));
            double[] v = d(values(52, n * heads * tkc * dd));
            Tensor tqT = up(f(q), n, heads, tq, dd);
            Tensor tkT = up(f(k), n, heads, tkc, dd);
            Tensor tvT = up(f(v), n, heads, tkc, dd);
            AttentionResult r = be.attention(s, tqT, tkT, tvT, causal, scale);
            double[][] ref = Reference.attention(q, k, v, n * heads, tq, tkc, dd, dd, causal, scale);
            close("attention causal=" + causal, ref[0], r.out());
            close("attention lse causal=" + causal, ref[1], r.logSumExp());
            assertEquals(DType.F32, r.logSumExp().dtype());
            double[] g = d(values(53, ref[0].length));
            AttentionGrads grads = be.attentionBackward(s, up(f(g), n, heads, tq, dd), tqT, tkT, tvT, r, causal, scale);
            int tkk = tkc;
            close("attention dq", Reference.numericGrad(p -> Reference.dot(g, Reference.attention(p, k, v, n * heads, tq, tkk, dd, dd, causal, scale)[0]), q, 1e-4), grads.dq());
            close("attention dk", Reference.numericGrad(p -> Reference.dot(g, Reference.attention(q, p, v, n * heads, tq, tkk, dd, dd, causal, scale)[0]), k, 1e-4), grads.dk());
            close("attention dv", Reference.numericGrad(p -> Reference.dot(g, Reference.attention(q, k, p, n * heads, tq, tkk, dd, dd, causal, scale)[0]), v, 1e-4), grads.dv());
        }
    }

    @Test
    void upsampleNearestAndBackward() {
        float[] x = values(60, 2 * 3 * 2);
        Tensor tx = up(x, 1, 2, 3, 2);
        float[] y = be.upsampleNearest2x(s, tx).toHost();
        assertEquals(2 * 6 * 4, y.length);
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < 6; i++) {
                for (int j = 0; j < 4; j++) {
                    assertEquals(x[(c * 3 + i / 2) * 2 + j / 2], y[(c * 6 + i) * 4 + j]);
                }
            }
        }
        float[] g = values(61, 2 * 6 * 4);
        float[] dx = be.upsampleNearest2xBackward(s, up(g, 1, 2, 6, 4)).toHost();
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 2; j++) {
                    double sum = 0;
                    for (int a = 0; a < 2; a++) {
                        for (int b = 0; b < 2; b++) {
                            sum += g[(c * 6 + 2 * i + a) * 4 + 2 * j + b];
                        }
                    }
                    assertEquals(sum, dx[(c * 3 + i) * 2 + j], 1e-6);
                }
            }
        }
    }

    @Test
    void reductionsCatLayoutAndElementwise() {
        float[] x = values(70, 2 * 3 * 4);
        Tensor tx = up(x, 2, 3, 4);
        double[] sum1 = new double[2 * 4];
        double total = 0;
        for (int a = 0; a < 2; a++) {
            for (int b = 0; b < 3; b++) {
                for (int c = 0; c < 4; c++) {
                    sum1[a * 4 + c] += x[(a * 3 + b) * 4 + c];
                    total += x[(a * 3 + b) * 4 + c];
                }
            }
        }
        Tensor s1 = be.sum(s, tx, new int[] {1}, false);
        assertEquals(Shape.of(2, 4), s1.shape());
        close("sum dim 1", sum1, s1);
        assertEquals(Shape.of(2, 1, 4), be.sum(s, tx, new int[] {-2}, true).shape());
        assertEquals(Shape.scalar(), be.sum(s, tx, new int[0], false).shape());
        assertEquals(total, be.sum(s, tx, new int[0], false).item(), 1e-5);
        assertEquals(total / 24, be.mean(s, tx, new int[0], false).item(), 1e-6);
        // cat along dim 1 and narrow back
        Tensor other = up(values(71, 2 * 2 * 4), 2, 2, 4);
        Tensor cat = be.cat(s, List.of(tx, other), 1);
        assertEquals(Shape.of(2, 5, 4), cat.shape());
        assertArrayEquals(tx.toHost(), be.narrow(s, cat, 1, 0, 3).toHost());
        assertArrayEquals(other.toHost(), be.narrow(s, cat, 1, 3, 2).toHost());
        float[] nb = be.narrowBackward(s, other, Shape.of(2, 5, 4), 1, 3).toHost();
        float[] otherHost = other.toHost();
        for (int a = 0; a < 2; a++) {
            for (int b = 0; b < 5; b++) {
                for (int c = 0; c < 4; c++) {
                    float want = b < 3 ? 0 : otherHost[(a * 2 + b - 3) * 4 + c];
                    assertEquals(want, nb[(a * 5 + b) * 4 + c]);
                }
            }
        }
        // permute (2, 3, 4) -> (4, 2, 3)
        float[] p = be.permute(s, tx, 2, 0, 1).toHost();
        for (int a = 0; a < 2; a++) {
            for (int b = 0; b < 3; b++) {
                for (int c = 0; c < 4; c++) {
                    assertEquals(x[(a * 3 + b) * 4 + c], p[(c * 2 + a) * 3 + b]);
                }
            }
        }
        // pad2d and expand
        float[] padded = be.pad2d(s, up(new float[] {1, 2, 3, 4}, 1, 2, 2), 1, 0, 0, 1).toHost();
        assertArrayEquals(new float[] {0, 1, 2, 0, 3, 4, 0, 0, 0}, padded);
        assertArrayEquals(new float[] {1, 2, 1, 2}, be.expand(s, up(new float[] {1, 2}, 2), Shape.of(2, 2)).toHost());
        // reshape is a view that outlives its base
        Tensor base = up(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor view = be.reshape(s, base, Shape.of(3, 2));
        base.close();
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, view.toHost());
        // elementwise with broadcasting, affine, clamp, unary
        Tensor a = up(new float[] {1, -2, 3, 4}, 2, 2);
        Tensor b = up(new float[] {2, 4}, 2);
        assertArrayEquals(new float[] {-3, -10, -1, -4}, be.add(s, a, b, -2).toHost());
        assertArrayEquals(new float[] {2, -8, 6, 16}, be.mul(s, a, b).toHost());
        assertArrayEquals(new float[] {0.5f, -0.5f, 1.5f, 1}, be.div(s, a, b).toHost());
        assertArrayEquals(new float[] {2.5f, -2, 5.5f, 7}, be.affine(s, a, 1.5, 1).toHost());
        assertArrayEquals(new float[] {1, -1, 2, 2}, be.clamp(s, a, -1, 2).toHost());
        assertArrayEquals(new float[] {1, 4, 9, 16}, be.unary(s, Backend.Unary.SQUARE, a).toHost());
        assertArrayEquals(new float[] {1, -1, 1, 1}, be.unary(s, Backend.Unary.SIGN, a).toHost());
        assertEquals((float) Math.exp(3), be.unary(s, Backend.Unary.EXP, a).toHost()[2], 1e-5);
    }

    @Test
    void inPlaceOpsWriteTheirDestination() {
        Tensor y = up(new float[] {1, 2, 3}, 3);
        be.axpyInto(y, 2, up(new float[] {1, 1, -1}, 3));
        assertArrayEquals(new float[] {3, 4, 1}, y.toHost());
        be.scaleInto(y, 0.5);
        assertArrayEquals(new float[] {1.5f, 2, 0.5f}, y.toHost());
        be.copyInto(y, up(new float[] {7, 8, 9}, 1, 3));
        assertArrayEquals(new float[] {7, 8, 9}, y.toHost());
        be.fillInto(y, -1);
        assertArrayEquals(new float[] {-1, -1, -1}, y.toHost());
    }

    @Test
    void lossEmbeddingAndSinusoidal() {
        float[] p = {1, 2, 3, 4};
        float[] t = {0, 2, 5, 1};
        Tensor tp = up(p, 2, 2);
        Tensor tt = up(t, 2, 2);
        assertEquals((1 + 0 + 4 + 9) / 4.0, be.mseLoss(s, tp, tt).item(), 1e-6);
        float[] dl = be.mseLossBackward(s, up(new float[] {2}), tp, tt).toHost();
        for (int i = 0; i < 4; i++) {
            assertEquals(2 * 2 * (p[i] - t[i]) / 4.0, dl[i], 1e-6);
        }
        float[] w = values(80, 5 * 3);
        Tensor ids = s.fromHost(new long[] {4, 0, 4}, 3);
        float[] e = be.embedding(s, up(w, 5, 3), ids).toHost();
        for (int j = 0; j < 3; j++) {
            assertEquals(w[12 + j], e[j]);
            assertEquals(w[j], e[3 + j]);
        }
        float[] g = values(81, 9);
        float[] dw = be.embeddingBackward(s, up(g, 3, 3), ids, 5).toHost();
        for (int j = 0; j < 3; j++) {
            assertEquals(g[j] + g[6 + j], dw[12 + j], 1e-6);
            assertEquals(g[3 + j], dw[j], 1e-6);
            assertEquals(0, dw[3 + j]);
        }
        Tensor emb = be.sinusoidalEmbedding(s, s.fromHost(new long[] {0, 999}, 2), 8);
        float[] em = emb.toHost();
        for (int k = 0; k < 4; k++) {
            double freq = Math.exp(-Math.log(10000) * k / 4);
            assertEquals(Math.cos(999 * freq), em[8 + k], 2e-4);
            assertEquals(Math.sin(999 * freq), em[8 + 4 + k], 2e-4);
            assertEquals(1, em[k], 1e-7);
        }
    }

    @Test
    void randomDrawsFollowTheCounterStreamAndAreStandardNormal() {
        Generator gen = new Generator(1234);
        float[] a = be.randn(s, Shape.of(100, 100), DType.F32, gen).toHost();
        assertEquals(10_000, gen.offset());
        float[] b = be.randn(s, Shape.of(7), DType.F32, new Generator(1234, 9_993)).toHost();
        assertArrayEquals(java.util.Arrays.copyOfRange(a, 9_993, 10_000), b, "counter-based: resuming at an offset");
        double mean = 0;
        double sq = 0;
        for (float v : a) {
            mean += v;
            sq += v * v;
        }
        mean /= a.length;
        double std = Math.sqrt(sq / a.length - mean * mean);
        assertEquals(0, mean, 0.04);
        assertEquals(1, std, 0.03);
        // The stream the cpu backend documents: SplitMix64 of seed·φ + c·M + φ, Box–Muller on two 24-bit fields.
        for (int c = 0; c < 5; c++) {
            assertEquals(splitMixNormal(1234, c), a[c], 1e-6, "value " + c);
        }
        float[] u = be.randUniform(s, Shape.of(1000), DType.F32, 2, 5, new Generator(7)).toHost();
        for (float v : u) {
            assertTrue(v >= 2 && v < 5, "uniform value " + v);
        }
        assertEquals(DType.BF16, be.randn(s, Shape.of(3), DType.BF16, new Generator(1)).dtype());
    }

    private static double splitMixNormal(long seed, long counter) {
        long z = seed * 0x9E3779B97F4A7C15L + counter * 0xD1B54A32D192ED03L + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        double u1 = ((z >>> 40) + 1) / (double) (1 << 24);
        double u2 = ((z >>> 8) & 0xFFFFFF) / (double) (1 << 24);
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    @Test
    void errorsNameTheOpAndShapes() {
        Tensor a = up(new float[] {1, 2, 3, 4}, 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> be.add(s, a, s.fromHost(new float[] {1, 2}, Shape.of(2), DType.BF16), 1));
        assertTrue(e.getMessage().contains("add") && e.getMessage().contains("(2, 2) f32"), e.getMessage());
        TorchException t = assertThrows(TorchException.class, () -> be.add(s, a, up(new float[] {1, 2, 3}, 3), 1));
        assertTrue(t.getMessage().contains("add.Tensor([2, 2], [3])"), t.getMessage());
        a.close();
        assertThrows(IllegalStateException.class, () -> be.silu(s, a));
    }
}
