package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Half;
import tenmin.testing.Numerics;

/**
 * Forward kernels of the cpu backend against naive float64 formulas written here (the gradient tests
 * only prove that backward matches forward; these prove forward computes the right function).
 */
class CpuForwardTest {
    private static CpuBackend be;
    private Scope s;
    private final Random rnd = new Random(99);

    @BeforeAll
    static void start() {
        be = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        be.close();
    }

    @BeforeEach
    void open() {
        s = Scope.root(be, "test");
    }

    @AfterEach
    void close() {
        s.close();
        assertEquals(0, be.liveTensors());
    }

    private float[] random(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    private Tensor t(float[] v, int... dims) {
        return s.fromHost(v, dims);
    }

    private static void close(String name, float[] expected, Tensor actual, double tol) {
        Numerics.assertClose(name, actual.shape().dimsLong(), expected, actual.toHost(), tol, tol);
    }

    @Test
    void linearAddsBiasToEveryRow() {
        float[] x = random(2 * 3 * 5);
        float[] w = random(4 * 5);
        float[] b = random(4);
        float[] want = new float[2 * 3 * 4];
        for (int r = 0; r < 6; r++) {
            for (int o = 0; o < 4; o++) {
                double acc = b[o];
                for (int k = 0; k < 5; k++) {
                    acc += (double) x[r * 5 + k] * w[o * 5 + k];
                }
                want[r * 4 + o] = (float) acc;
            }
        }
        Tensor y = be.linear(s, t(x, 2, 3, 5), t(w, 4, 5), t(b, 4));
        assertEquals(Shape.of(2, 3, 4), y.shape());
        close("linear", want, y, 1e-5);
    }

    @Test
    void convolutionMatchesDirectSum() {
        int n = 2;
        int c = 3;
        int h = 7;
        int w = 6;
        int o = 4;
        for (int[] ksp : new int[][] {{3, 1, 1}, {3, 2, 1}, {3, 2, 0}, {1, 1, 0}, {1, 2, 0}}) {
            int k = ksp[0];
            int stride = ksp[1];
            int pad = ksp[2];
            float[] x = random(n * c * h * w);
            float[] wt = random(o * c * k * k);
            float[] b = random(o);
            int oh = (h + 2 * pad - k) / stride + 1;
            int ow = (w + 2 * pad - k) / stride + 1;
            float[] want = new float[n * o * oh * ow];
            for (int in = 0; in < n; in++) {
                for (int oc = 0; oc < o; oc++) {
                    for (int i = 0; i < oh; i++) {
                        for (int j = 0; j < ow; j++) {
                            double acc = b[oc];
                            for (int ic = 0; ic < c; ic++) {
                                for (int u = 0; u < k; u++) {
                                    for (int v = 0; v < k; v++) {
                                        int hi = i * stride + u - pad;
                                        int wj = j * stride + v - pad;
                                        if (hi >= 0 && hi < h && wj >= 0 && wj < w) {
                                            acc += (double) x[((in * c + ic) * h + hi) * w + wj]
                                                    * wt[((oc * c + ic) * k + u) * k + v];
                                        }
                                    }
                                }
                            }
                            want[((in * o + oc) * oh + i) * ow + j] = (float) acc;
                        }
                    }
                }
            }
            Tensor y = be.convolution(s, t(x, n, c, h, w), t(wt, o, c, k, k), t(b, o), stride, pad);
            assertEquals(Shape.of(n, o, oh, ow), y.shape());
            close("conv k" + k + " s" + stride + " p" + pad, want, y, 1e-5);
        }
    }

    @Test
    void convolutionInRowBandsMatchesDirectSumsForwardAndBackward() {
        int c = 64;
        int h = 130;
        int w = 128;
        int o = 3;
        Convolution.Geometry g = new Convolution.Geometry(1, c, h, w, o, 3, 1, 1);
        org.junit.jupiter.api.Assertions.assertTrue(g.bandRows() < g.outH(), "the case must need several bands");
        float[] x = random(c * h * w);
        float[] wt = random(o * c * 9);
        float[] dy = random(o * h * w);
        double[] y = new double[o * h * w];
        double[] dx = new double[x.length];
        double[] dw = new double[wt.length];
        for (int oc = 0; oc < o; oc++) {
            for (int ic = 0; ic < c; ic++) {
                for (int u = 0; u < 3; u++) {
                    for (int v = 0; v < 3; v++) {
                        double wv = wt[((oc * c + ic) * 3 + u) * 3 + v];
                        for (int i = 0; i < h; i++) {
                            int hi = i + u - 1;
                            if (hi < 0 || hi >= h) {
                                continue;
                            }
                            for (int j = 0; j < w; j++) {
                                int wj = j + v - 1;
                                if (wj < 0 || wj >= w) {
                                    continue;
                                }
                                int xi = (ic * h + hi) * w + wj;
                                int yi = (oc * h + i) * w + j;
                                y[yi] += wv * x[xi];
                                dx[xi] += wv * dy[yi];
                                dw[((oc * c + ic) * 3 + u) * 3 + v] += (double) dy[yi] * x[xi];
                            }
                        }
                    }
                }
            }
        }
        Tensor tx = t(x, 1, c, h, w);
        Tensor tw = t(wt, o, c, 3, 3);
        close("banded conv", toFloat(y), be.convolution(s, tx, tw, null, 1, 1), 1e-5);
        Backend.LayerGrads grads = be.convolutionBackward(s, t(dy, 1, o, h, w), tx, tw, 1, 1,
                new Backend.OutputMask(true, true, false));
        close("banded conv dx", toFloat(dx), grads.dx(), 1e-5);
        close("banded conv dW", toFloat(dw), grads.dWeight(), 1e-5);
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    @Test
    void groupNormNormalisesEachGroup() {
        int n = 2;
        int c = 6;
        int hw = 5;
        int g = 3;
        float[] x = random(n * c * hw);
        float[] gamma = random(c);
        float[] beta = random(c);
        float[] want = new float[x.length];
        int per = c / g * hw;
        for (int b = 0; b < n; b++) {
            for (int gr = 0; gr < g; gr++) {
                int off = (b * c + gr * (c / g)) * hw;
                double mean = 0;
                for (int i = 0; i < per; i++) {
                    mean += x[off + i];
                }
                mean /= per;
                double var = 0;
                for (int i = 0; i < per; i++) {
                    var += (x[off + i] - mean) * (x[off + i] - mean);
                }
                var /= per;
                for (int i = 0; i < per; i++) {
                    int ch = gr * (c / g) + i / hw;
                    want[off + i] = (float) ((x[off + i] - mean) / Math.sqrt(var + 1e-5) * gamma[ch] + beta[ch]);
                }
            }
        }
        NormResult r = be.groupNorm(s, t(x, n, c, 1, hw), t(gamma, c), t(beta, c), g, 1e-5);
        close("groupNorm", want, r.y(), 1e-5);
        assertEquals(Shape.of(n, g), r.mean().shape());
    }

    @Test
    void layerNormNormalisesLastDimension() {
        float[] x = random(3 * 8);
        float[] gamma = random(8);
        float[] beta = random(8);
        float[] want = new float[x.length];
        for (int r = 0; r < 3; r++) {
            double mean = 0;
            double sq = 0;
            for (int j = 0; j < 8; j++) {
                mean += x[r * 8 + j] / 8.0;
            }
            for (int j = 0; j < 8; j++) {
                sq += (x[r * 8 + j] - mean) * (x[r * 8 + j] - mean) / 8.0;
            }
            for (int j = 0; j < 8; j++) {
                want[r * 8 + j] = (float) ((x[r * 8 + j] - mean) / Math.sqrt(sq + 1e-5) * gamma[j] + beta[j]);
            }
        }
        close("layerNorm", want, be.layerNorm(s, t(x, 3, 8), t(gamma, 8), t(beta, 8), 1e-5).y(), 1e-5);
    }

    @Test
    void attentionIsSoftmaxOfScaledScores() {
        int b = 3;
        int tq = 70;
        int tk = 77;
        int d = 4;
        int dv = 5;
        for (boolean causal : new boolean[] {false, true}) {
            int keys = causal ? tq : tk;
            float[] q = random(b * tq * d);
            float[] k = random(b * keys * d);
            float[] v = random(b * keys * dv);
            double scale = 1 / Math.sqrt(d);
            float[] want = new float[b * tq * dv];
            float[] wantLse = new float[b * tq];
            for (int bb = 0; bb < b; bb++) {
                for (int i = 0; i < tq; i++) {
                    double[] p = new double[keys];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < keys; j++) {
                        double dot = 0;
                        for (int e = 0; e < d; e++) {
                            dot += (double) q[(bb * tq + i) * d + e] * k[(bb * keys + j) * d + e];
                        }
                        p[j] = causal && j > i ? Double.NEGATIVE_INFINITY : dot * scale;
                        max = Math.max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < keys; j++) {
                        sum += Math.exp(p[j] - max);
                    }
                    wantLse[bb * tq + i] = (float) (max + Math.log(sum));
                    for (int e = 0; e < dv; e++) {
                        double acc = 0;
                        for (int j = 0; j < keys; j++) {
                            acc += Math.exp(p[j] - max) / sum * v[(bb * keys + j) * dv + e];
                        }
                        want[(bb * tq + i) * dv + e] = (float) acc;
                    }
                }
            }
            Backend.AttentionResult r = be.attention(s, t(q, 1, b, tq, d), t(k, 1, b, keys, d), t(v, 1, b, keys, dv),
                    causal, scale);
            close("attention causal=" + causal, want, r.out(), 1e-5);
            close("lse causal=" + causal, wantLse, r.logSumExp(), 1e-5);
        }
    }

    @Test
    void activationsMatchTheirFormulas() {
        float[] x = {-4f, -2.5f, -1f, -0.3f, 0f, 0.2f, 0.7f, 1.5f, 3f, 5f};
        int n = x.length;
        float[] silu = new float[n];
        float[] gelu = new float[n];
        float[] geluTanh = new float[n];
        float[] quick = new float[n];
        for (int i = 0; i < n; i++) {
            double v = x[i];
            silu[i] = (float) (v / (1 + Math.exp(-v)));
            gelu[i] = (float) (0.5 * v * (1 + erfSeries(v / Math.sqrt(2))));
            geluTanh[i] = (float) (0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
            quick[i] = (float) (v / (1 + Math.exp(-1.702 * v)));
        }
        Tensor xt = t(x, n);
        close("silu", silu, be.silu(s, xt), 1e-6);
        close("gelu", gelu, be.gelu(s, xt, GeluApproximation.NONE), 1e-6);
        close("gelu tanh", geluTanh, be.gelu(s, xt, GeluApproximation.TANH), 1e-6);
        close("quick gelu", quick, be.quickGelu(s, xt), 1e-6);
    }

    /** erf by its Maclaurin series, exact to double rounding for |z| <= 4. */
    private static double erfSeries(double z) {
        double term = z;
        double sum = z;
        for (int k = 1; k < 200; k++) {
            term *= -z * z / k;
            sum += term / (2 * k + 1);
        }
        return 2 / Math.sqrt(Math.PI) * sum;
    }

    @Test
    void broadcastingBinaryOps() {
        float[] a = random(2 * 3 * 4);
        float[] b = random(3 * 1);
        float[] add = new float[a.length];
        float[] mul = new float[a.length];
        float[] div = new float[a.length];
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int k = 0; k < 4; k++) {
                    int at = (i * 3 + j) * 4 + k;
                    add[at] = a[at] + 0.5f * b[j];
                    mul[at] = a[at] * b[j];
                    div[at] = a[at] / b[j];
                }
            }
        }
        Tensor ta = t(a, 2, 3, 4);
        Tensor tb = t(b, 3, 1);
        close("add", add, be.add(s, ta, tb, 0.5), 1e-6);
        close("mul", mul, be.mul(s, tb, ta), 1e-6);
        close("div", div, be.div(s, ta, tb), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> be.add(s, ta, t(random(3), 3), 1.0));
        assertThrows(IllegalArgumentException.class, () -> be.add(s, ta, be.cast(s, ta, DType.BF16), 1.0));
    }

    @Test
    void layoutKernels() {
        float[] x = random(2 * 3 * 4);
        Tensor tx = t(x, 2, 3, 4);
        float[] perm = new float[x.length];
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int k = 0; k < 4; k++) {
                    perm[(k * 2 + i) * 3 + j] = x[(i * 3 + j) * 4 + k];
                }
            }
        }
        close("permute", perm, be.permute(s, tx, 2, 0, 1), 0);
        Tensor nar = be.narrow(s, tx, 1, 1, 2);
        float[] narrow = new float[2 * 2 * 4];
        for (int i = 0; i < 2; i++) {
            System.arraycopy(x, (i * 3 + 1) * 4, narrow, i * 8, 8);
        }
        close("narrow", narrow, nar, 0);
        float[] back = new float[x.length];
        for (int i = 0; i < 2; i++) {
            System.arraycopy(narrow, i * 8, back, (i * 3 + 1) * 4, 8);
        }
        close("narrowBackward", back, be.narrowBackward(s, nar, tx.shape(), 1, 1), 0);
        Tensor first = be.narrow(s, tx, 1, 0, 1);
        Tensor rest = be.narrow(s, tx, 1, 1, 2);
        close("cat", x, be.cat(s, List.of(first, rest), 1), 0);
        float[] img = random(2 * 2 * 3);
        Tensor up = be.upsampleNearest2x(s, t(img, 1, 2, 2, 3));
        float[] u = up.toHost();
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 6; j++) {
                    assertEquals(img[(c * 2 + i / 2) * 3 + j / 2], u[(c * 4 + i) * 6 + j]);
                }
            }
        }
        Tensor padded = be.pad2d(s, t(img, 1, 2, 2, 3), 0, 1, 0, 1);
        assertEquals(Shape.of(1, 2, 3, 4), padded.shape());
        float[] p = padded.toHost();
        assertEquals(img[4], p[(0 * 3 + 1) * 4 + 1]);
        assertEquals(0f, p[(1 * 3 + 2) * 4 + 3]);
        assertEquals(0f, p[(0 * 3 + 0) * 4 + 3]);
        float[] row = {1, 2, 3};
        close("expand", new float[] {1, 2, 3, 1, 2, 3}, be.expand(s, t(row, 3), Shape.of(2, 3)), 0);
    }

    @Test
    void reductionsLossAndEmbedding() {
        float[] x = random(2 * 3 * 4);
        Tensor tx = t(x, 2, 3, 4);
        float[] sum02 = new float[3];
        double total = 0;
        for (int i = 0; i < x.length; i++) {
            sum02[(i / 4) % 3] += x[i];
            total += x[i];
        }
        close("sum dims", sum02, be.sum(s, tx, new int[] {0, 2}, false), 1e-6);
        assertEquals(Shape.of(1, 3, 1), be.sum(s, tx, new int[] {0, -1}, true).shape());
        assertEquals(total / 24, be.mean(s, tx, new int[0], false).item(), 1e-6);
        float[] y = random(x.length);
        double mse = 0;
        for (int i = 0; i < x.length; i++) {
            mse += (x[i] - y[i]) * (x[i] - y[i]) / x.length;
        }
        assertEquals(mse, be.mseLoss(s, tx, t(y, 2, 3, 4)).item(), 1e-6);
        float[] w = random(5 * 2);
        Tensor e = be.embedding(s, t(w, 5, 2), s.fromHost(new long[] {3, 0, 3}, 3));
        close("embedding", new float[] {w[6], w[7], w[0], w[1], w[6], w[7]}, e, 0);
        assertThrows(IllegalArgumentException.class, () -> be.embedding(s, t(w, 5, 2), s.fromHost(new long[] {5}, 1)));
    }

    @Test
    void castsRoundToNearestEvenLikeTheFileFormats() {
        float[] x = random(1000);
        float[] bf = new float[x.length];
        float[] hf = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            bf[i] = Half.bf16ToF32(Half.f32ToBf16(x[i]));
            hf[i] = Half.f16ToF32(Half.f32ToF16(x[i]));
        }
        Tensor tx = t(x, 1000);
        Tensor b = be.cast(s, tx, DType.BF16);
        assertEquals(DType.BF16, b.dtype());
        assertArrayEquals(bf, b.toHost());
        assertArrayEquals(hf, be.cast(s, tx, DType.F16).toHost());
        // ops on bf16 round their results too
        float[] sum = be.add(s, b, b, 0.3).toHost();
        for (int i = 0; i < sum.length; i++) {
            assertEquals(Half.bf16ToF32(Half.f32ToBf16(bf[i] + 0.3f * bf[i])), sum[i]);
        }
    }

    @Test
    void fromHostBytesReadsEachDtypeLittleEndian() {
        try (Arena arena = Arena.ofConfined()) {
            float[] v = {1.5f, -2.25f, 3.0e-3f};
            MemorySegment f32 = arena.allocate(12);
            MemorySegment bf16 = arena.allocate(6);
            MemorySegment f16 = arena.allocate(6);
            MemorySegment i64 = arena.allocate(24);
            for (int i = 0; i < 3; i++) {
                f32.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4L * i, v[i]);
                bf16.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i, Half.f32ToBf16(v[i]));
                f16.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i, Half.f32ToF16(v[i]));
                i64.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8L * i, 1000L + i);
            }
            assertArrayEquals(v, s.fromHostBytes(f32, Shape.of(3), DType.F32).toHost());
            float[] bfWant = new float[3];
            float[] hfWant = new float[3];
            for (int i = 0; i < 3; i++) {
                bfWant[i] = Half.bf16ToF32(Half.f32ToBf16(v[i]));
                hfWant[i] = Half.f16ToF32(Half.f32ToF16(v[i]));
            }
            assertArrayEquals(bfWant, s.fromHostBytes(bf16, Shape.of(3), DType.BF16).toHost());
            assertArrayEquals(hfWant, s.fromHostBytes(f16, Shape.of(3), DType.F16).toHost());
            assertArrayEquals(new long[] {1000, 1001, 1002}, s.fromHostBytes(i64, Shape.of(3), DType.I64).toHostLongs());
            assertThrows(IllegalArgumentException.class, () -> s.fromHostBytes(f32, Shape.of(4), DType.F32));
        }
    }

    @Test
    void randomDrawsAreSeededCounterBasedAndNormal() {
        Generator g = new Generator(5);
        float[] a = s.randn(Shape.of(100_000), DType.F32, g).toHost();
        assertEquals(100_000, g.offset());
        float[] b = s.randn(Shape.of(10), DType.F32, new Generator(5)).toHost();
        assertArrayEquals(java.util.Arrays.copyOf(a, 10), b);
        float[] resumed = s.randn(Shape.of(10), DType.F32, new Generator(5, 99_990)).toHost();
        assertArrayEquals(java.util.Arrays.copyOfRange(a, 99_990, 100_000), resumed);
        double mean = 0;
        double sq = 0;
        for (float v : a) {
            mean += v / a.length;
            sq += (double) v * v / a.length;
        }
        assertEquals(0, mean, 0.02);
        assertEquals(1, sq, 0.02);
        float[] u = s.randUniform(Shape.of(10_000), DType.F32, -2, 3, new Generator(6)).toHost();
        double um = 0;
        for (float v : u) {
            org.junit.jupiter.api.Assertions.assertTrue(v >= -2 && v < 3);
            um += v / u.length;
        }
        assertEquals(0.5, um, 0.05);
    }
}
