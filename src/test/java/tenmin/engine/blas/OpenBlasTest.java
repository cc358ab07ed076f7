package tenmin.engine.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * OpenBLAS through FFM against naive loops: Gram matrices, products in every transpose combination (double and
 * fp32), Cholesky (positive definite and not), symmetric eigenpairs (reconstruction and orthonormality); and how
 * it is found. The build unpacks OpenBLAS from Maven Central, so the library must be found here.
 */
class OpenBlasTest {
    @TempDir
    Path dir;

    private static OpenBlas blas() {
        OpenBlas.Found f = OpenBlas.find();
        assertNotNull(f.blas(), () -> "no OpenBLAS (the build unpacks it): " + f.why());
        return f.blas();
    }

    private static double[] gaussian(SplittableRandom rnd, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = rnd.nextGaussian();
        }
        return x;
    }

    @Test
    void reportsItsBuildAndPassesItsSelfTest() {
        OpenBlas b = blas();
        assertTrue(b.config().startsWith("OpenBLAS"), b.config());
        assertTrue(Files.isRegularFile(b.path()));
        assertNull(b.selfTest());
    }

    @Test
    void offAndMissingFilesAreRejectedWithTheirReasons() throws Exception {
        OpenBlas.Found off = OpenBlas.locate("off", NativeLibraries.buildCache());
        assertNull(off.blas());
        assertEquals("TENMIN_OPENBLAS=off", off.why());

        Path missing = dir.resolve("nope.so");
        OpenBlas.Found f = OpenBlas.locate(missing.toString(), null);
        assertTrue(f.why().contains(missing + ": no such file"), f.why());

        Path notALibrary = Files.writeString(dir.resolve("libopenblas.so.0"), "not an ELF file");
        OpenBlas.Found g = OpenBlas.locate(dir.toString(), null); // a folder: its libopenblas.so.0
        assertTrue(g.why().startsWith(notALibrary.toString() + ": "), g.why());
    }

    @Test
    void theEnvironmentVariableNamesAFileOrItsFolder() {
        Path lib = blas().path();
        assertEquals(lib, OpenBlas.locate(lib.toString(), null).blas().path());
        assertEquals(lib.getParent().resolve(OpenBlas.SONAME),
                OpenBlas.locate(lib.getParent().toString(), null).blas().path());
    }

    @Test
    void gramMatricesMatchNaiveSums() {
        SplittableRandom rnd = new SplittableRandom(1);
        int m = 7;
        int k = 53;
        double[] a = gaussian(rnd, m * k); // (m, k)
        double[] rows = new double[m * m];
        double[] cols = new double[m * m];
        blas().gramRows(a, m, k, rows);
        double[] at = new double[k * m];    // (k, m)
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < k; j++) {
                at[j * m + i] = a[i * k + j];
            }
        }
        blas().gramColumns(at, k, m, cols);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int q = 0; q < k; q++) {
                    s += a[i * k + q] * a[j * k + q];
                }
                assertEquals(s, rows[i * m + j], 1e-12 * k, "a·aᵀ [" + i + "][" + j + "]");
                assertEquals(s, cols[i * m + j], 1e-12 * k, "atᵀ·at [" + i + "][" + j + "]");
            }
        }
    }

    @Test
    void aGramMatrixSummedOverColumnBlocksEqualsTheWholeOne() {
        SplittableRandom rnd = new SplittableRandom(5);
        int m = 6;
        int k = 37;
        double[] a = gaussian(rnd, m * k);
        double[] whole = new double[m * m];
        blas().gramRows(a, m, k, whole);
        List<Integer> widths = new ArrayList<>();
        double[] summed = blas().gramRowsInBlocks(m, k, 16, new double[m * 16], (c0, cb, block) -> {
            widths.add(cb);
            for (int i = 0; i < m; i++) {
                System.arraycopy(a, i * k + c0, block, i * cb, cb);
            }
        });
        assertEquals(List.of(16, 16, 5), widths, "blocks of 16, 16 and 5 columns");
        for (int i = 0; i < whole.length; i++) {
            assertEquals(whole[i], summed[i], 1e-12 * k, "entry " + i);
        }
    }

    @Test
    void productsInEveryTransposeCombination() {
        SplittableRandom rnd = new SplittableRandom(2);
        int m = 5;
        int n = 9;
        int k = 13;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                double[] a = gaussian(rnd, m * k);
                double[] b = gaussian(rnd, k * n);
                double[] c = new double[m * n];
                float[] af = new float[a.length];
                float[] bf = new float[b.length];
                for (int i = 0; i < a.length; i++) {
                    af[i] = (float) a[i];
                }
                for (int i = 0; i < b.length; i++) {
                    bf[i] = (float) b[i];
                }
                float[] cf = new float[m * n + 2]; // longer than needed: the tail stays untouched
                cf[m * n] = 7f;
                blas().multiply(ta, tb, m, n, k, a, b, c);
                blas().multiply(ta, tb, m, n, k, af, bf, cf);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        double sf = 0;
                        for (int q = 0; q < k; q++) {
                            double x = ta ? a[q * m + i] : a[i * k + q];
                            double y = tb ? b[j * k + q] : b[q * n + j];
                            s += x * y;
                            sf += (double) (ta ? af[q * m + i] : af[i * k + q]) * (tb ? bf[j * k + q] : bf[q * n + j]);
                        }
                        String where = "[" + i + "][" + j + "] transA=" + ta + " transB=" + tb;
                        assertEquals(s, c[i * n + j], 1e-12 * k, "double " + where);
                        assertEquals(sf, cf[i * n + j], 1e-5 * k, "float " + where);
                    }
                }
                assertEquals(7f, cf[m * n]);
            }
        }
    }

    @Test
    void choleskyOfAPositiveDefiniteMatrixAndRefusalOfAnIndefiniteOne() {
        SplittableRandom rnd = new SplittableRandom(3);
        int n = 6;
        double[] x = gaussian(rnd, n * 20);
        double[] g = new double[n * n];
        blas().gramRows(x, n, 20, g);
        double[] r = g.clone();
        assertTrue(blas().choleskyUpper(r, n));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int q = 0; q < n; q++) {
                    s += r[q * n + i] * r[q * n + j];
                }
                assertEquals(g[i * n + j], s, 1e-10 * g[0], "(RᵀR)[" + i + "][" + j + "]");
                if (j < i) {
                    assertEquals(0, r[i * n + j], "below the diagonal");
                }
            }
        }
        double[] indefinite = {1, 2, 2, 1}; // eigenvalues 3 and -1
        assertFalse(blas().choleskyUpper(indefinite, 2));
    }

    @Test
    void symmetricEigenpairsReconstructTheMatrix() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (int n : new int[] {1, 2, 17, 64}) {
            double[] a = tenmin.testing.Reference.randomSymmetric(rnd, n);
            double[] v = a.clone();
            double[] w = new double[n];
            blas().symmetricEigen(v, n, w);
            for (int i = 1; i < n; i++) {
                assertTrue(w[i - 1] >= w[i], "descending at " + i + " of n=" + n);
            }
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0; // Σ_k w_k v_k[i] v_k[j]
                    double dot = 0;
                    for (int q = 0; q < n; q++) {
                        s += w[q] * v[q * n + i] * v[q * n + j];
                        dot += v[i * n + q] * v[j * n + q];
                    }
                    assertEquals(a[i * n + j], s, 1e-11 * n, "V diag(w) Vᵀ [" + i + "][" + j + "] of n=" + n);
                    assertEquals(i == j ? 1 : 0, dot, 1e-12 * n, "orthonormal rows " + i + ", " + j + " of n=" + n);
                }
            }
        }
    }
}
