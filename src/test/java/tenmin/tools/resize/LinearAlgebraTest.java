package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;
import org.junit.jupiter.api.Test;

import tenmin.formats.Half;
import tenmin.formats.StDType;

/**
 * The vectorised kernels and the small dense routines against naive loops and EJML; the {@link Linalg}
 * operations of both implementations (Java kernels, OpenBLAS).
 */
class LinearAlgebraTest {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void gramMatchesNaiveDoubleSums() {
        SplittableRandom rnd = new SplittableRandom(1);
        for (int[] shape : new int[][] {{1, 1}, {3, 5}, {8, 1000}, {13, 37}, {6, 513}}) {
            int rows = shape[0];
            int cols = shape[1];
            float[] a = new float[rows * cols];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rnd.nextGaussian();
            }
            float[] at = JavaLinalg.transpose(a, rows, cols); // (cols, rows)
            for (Linalg la : Linalgs.all()) {
                double[] g = la.gramOfRows(a, rows, cols);
                double[] gc = la.gramOfColumns(at, cols, rows);
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < rows; j++) {
                        double s = 0;
                        for (int k = 0; k < cols; k++) {
                            s += (double) a[i * cols + k] * a[j * cols + k];
                        }
                        String where = "[" + i + "][" + j + "] of " + Arrays.toString(shape) + ", " + la.describe();
                        assertEquals(s, g[i * rows + j], 1e-12 * cols, "G" + where);
                        assertEquals(s, gc[i * rows + j], 1e-12 * cols, "Gram of columns" + where);
                    }
                }
            }
        }
    }

    @Test
    void smallKProductMatchesNaiveLoops() {
        SplittableRandom rnd = new SplittableRandom(2);
        for (int[] s : new int[][] {{1, 1, 1}, {5, 3, 70}, {4, 8, 64}, {9, 2, 200}, {16, 16, 1031}}) {
            int d = s[0];
            int r = s[1];
            int n = s[2];
            float[] k = new float[d * r];
            float[] x = new float[r * n];
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) rnd.nextGaussian();
            }
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            float[] xt = JavaLinalg.transpose(x, r, n); // (n, r), an up factor
            for (Linalg la : Linalgs.all()) {
                float[] c = la.multiply(k, d, r, x, n, new float[d * n + 3]);
                float[] ct = la.multiplyByTransposed(k, d, r, xt, n);        // k·xtᵀ = k·x (d, n)
                float[] tc = la.multiplyTransposed(xt, n, r, k, d);          // xt·kᵀ = (k·x)ᵀ (n, d)
                for (int i = 0; i < d; i++) {
                    for (int j = 0; j < n; j++) {
                        double acc = 0;
                        for (int q = 0; q < r; q++) {
                            acc += (double) k[i * r + q] * x[q * n + j];
                        }
                        String where = "[" + i + "][" + j + "], " + la.describe();
                        assertEquals(acc, c[i * n + j], 1e-5 * (1 + Math.abs(acc)), "C" + where);
                        assertEquals(acc, ct[i * n + j], 1e-5 * (1 + Math.abs(acc)), "K·upᵀ" + where);
                        assertEquals(acc, tc[j * d + i], 1e-5 * (1 + Math.abs(acc)), "up·Kᵀ" + where);
                    }
                }
            }
        }
    }

    @Test
    void sumOfSquaresOfHalfPrecisionIncludesSubnormalsAndPropagatesInfinity() {
        int n = 10_007; // not a multiple of the chunk or the vector length
        short[] h = new short[n];
        SplittableRandom rnd = new SplittableRandom(3);
        double expected = 0;
        for (int i = 0; i < n; i++) {
            h[i] = (short) rnd.nextInt(0x7c00); // every finite positive fp16, subnormals included
            if (rnd.nextBoolean()) {
                h[i] |= (short) 0x8000;
            }
            double v = Half.f16ToF32(h[i]);
            expected += v * v;
        }
        MemorySegment seg = MemorySegment.ofArray(new byte[2 * n + 6]);
        for (int i = 0; i < n; i++) {
            seg.set(SHORT_LE, 6 + 2L * i, h[i]);
        }
        assertEquals(expected, Kernels.sumSquares(seg, 6, n, StDType.F16), 1e-6 * expected);
        seg.set(SHORT_LE, 6 + 2L * 5000, (short) 0x7c00); // +inf
        assertEquals(Double.POSITIVE_INFINITY, Kernels.sumSquares(seg, 6, n, StDType.F16));

        double bf = 0;
        for (int i = 0; i < n; i++) {
            short b = (short) (rnd.nextInt(0x4400) | (rnd.nextBoolean() ? 0x8000 : 0)); // |x| < 512
            seg.set(SHORT_LE, 6 + 2L * i, b);
            double v = Half.bf16ToF32(b);
            bf += v * v;
        }
        assertEquals(bf, Kernels.sumSquares(seg, 6, n, StDType.BF16), 1e-6 * bf);

        // fp8 e4m3fn (an fp8 checkpoint's weights): every finite code, by the format's definition (bias 7, subnormals
        // m/8 · 2^-6)
        double f8 = 0;
        for (int i = 0; i < n; i++) {
            int code = rnd.nextInt(0x7F) | (rnd.nextBoolean() ? 0x80 : 0);
            seg.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 6 + i, (byte) code);
            int e = (code >>> 3) & 0xF;
            int m = code & 7;
            double v = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
            f8 += v * v;
        }
        assertEquals(f8, Kernels.sumSquares(seg, 6, n, StDType.F8_E4M3), 1e-6 * f8);
    }

    @Test
    void symmetricEigenMatchesEjml() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (int n : new int[] {1, 2, 3, 17, 64}) {
            double[] a = tenmin.testing.Reference.randomSymmetric(rnd, n);
            EigenDecomposition_F64<DMatrixRMaj> ref = DecompositionFactory_DDRM.eig(n, false, true);
            assertTrue(ref.decompose(new DMatrixRMaj(n, n, true, a.clone())));
            double[] expected = new double[n];
            for (int i = 0; i < n; i++) {
                expected[i] = ref.getEigenvalue(i).real;
            }
            Arrays.sort(expected);
            for (Linalg la : Linalgs.all()) {
                SymmetricEigen.Result r = la.eigen(a.clone(), n);
                for (int i = 0; i < n; i++) {
                    assertEquals(expected[n - 1 - i], r.values()[i], 1e-12 * n, "eigenvalue " + i + " of n=" + n);
                    // A v = λ v and |v| = 1
                    double norm = 0;
                    for (int k = 0; k < n; k++) {
                        double av = 0;
                        for (int j = 0; j < n; j++) {
                            av += a[k * n + j] * r.vectors()[i * n + j];
                        }
                        assertEquals(r.values()[i] * r.vectors()[i * n + k], av, 1e-10 * n, "residual " + i);
                        norm += r.vectors()[i * n + k] * r.vectors()[i * n + k];
                    }
                    assertEquals(1, norm, 1e-12);
                }
            }
        }
    }

    @Test
    void symmetricEigenHandlesRepeatedAndZeroEigenvalues() {
        int n = 6;
        double[] a = new double[n * n];
        double[] diag = {3, 3, 0, 0, 1, 3};
        for (int i = 0; i < n; i++) {
            a[i * n + i] = diag[i];
        }
        for (Linalg la : Linalgs.all()) {
            SymmetricEigen.Result r = la.eigen(a.clone(), n);
            assertEquals("[3.0, 3.0, 3.0, 1.0, 0.0, 0.0]", Arrays.toString(r.values()), la.describe());
        }
    }

    @Test
    void semidefiniteCholeskyReproducesTheGramMatrix() {
        SplittableRandom rnd = new SplittableRandom(5);
        int r = 7;
        int cols = 30;
        float[] a = new float[r * cols];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        System.arraycopy(a, cols, a, 5 * cols, cols); // row 5 = row 1: rank 6
        Arrays.fill(a, 3 * cols, 4 * cols, 0f);       // row 3 zero: rank 5
        checkCholesky(Kernels.gramRows(a, r, cols), r, 5);
        System.arraycopy(a, 0, a, 3 * cols, cols);
        for (int i = 0; i < cols; i++) {
            a[5 * cols + i] = (float) rnd.nextGaussian();
        }
        checkCholesky(Kernels.gramRows(a, r, cols), r, 6); // row 3 = row 0: rank 6
        for (int i = 0; i < cols; i++) {
            a[3 * cols + i] = (float) rnd.nextGaussian();
        }
        checkCholesky(Kernels.gramRows(a, r, cols), r, 7); // positive definite
    }

    /** R (upper, RᵀR = G, {@code rank} nonzero rows) from both implementations; G is left as it was. */
    private static void checkCholesky(double[] g, int r, int rank) {
        double[] before = g.clone();
        for (Linalg la : Linalgs.all()) {
            double[] u = la.choleskyUpper(g, r);
            assertTrue(Arrays.equals(before, g), "G unchanged, " + la.describe());
            int nonzeroRows = 0;
            for (int i = 0; i < r; i++) {
                boolean nonzero = false;
                for (int j = 0; j < r; j++) {
                    double s = 0;
                    for (int k = 0; k < r; k++) {
                        s += u[k * r + i] * u[k * r + j];
                    }
                    assertEquals(g[i * r + j], s, 1e-9 * g[0], "(RᵀR)[" + i + "][" + j + "], " + la.describe());
                    if (j < i) {
                        assertEquals(0, u[i * r + j], "upper triangular, " + la.describe());
                    }
                    nonzero |= u[i * r + j] != 0;
                }
                nonzeroRows += nonzero ? 1 : 0;
            }
            assertEquals(rank, nonzeroRows, "rows of R, " + la.describe());
        }
    }

    @Test
    void spectralNormMatchesAnExactSvd() {
        SplittableRandom rnd = new SplittableRandom(6);
        // a trained-like weight: a few strong directions over noise
        int rows = 40;
        int cols = 90;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.01 * rnd.nextGaussian());
        }
        for (int q = 0; q < 3; q++) {
            double[] u = new double[rows];
            double[] v = new double[cols];
            for (int i = 0; i < rows; i++) {
                u[i] = rnd.nextGaussian();
            }
            for (int j = 0; j < cols; j++) {
                v[j] = rnd.nextGaussian();
            }
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    w[i * cols + j] += (float) (u[i] * v[j] * 0.05 / (q + 1));
                }
            }
        }
        double exact = Oracle.spectralNorm(w, rows, cols);
        assertEquals(exact, BaseNorms.spectral(w, rows, cols), 2e-6 * exact);
        assertEquals(BaseNorms.spectral(w, rows, cols), BaseNorms.spectral(w, rows, cols), "deterministic");
        // a rank-one matrix converges in one step; a zero matrix has norm 0
        float[] one = new float[6 * 4];
        for (int i = 0; i < 6; i++) {
            for (int j = 0; j < 4; j++) {
                one[i * 4 + j] = (i + 1) * (j - 1.5f);
            }
        }
        assertEquals(Oracle.spectralNorm(one, 6, 4), BaseNorms.spectral(one, 6, 4), 1e-5);
        assertEquals(0f, BaseNorms.spectral(new float[12], 3, 4));
    }
}
