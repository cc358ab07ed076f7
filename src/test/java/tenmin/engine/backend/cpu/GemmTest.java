package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;

import org.junit.jupiter.api.Test;

import tenmin.testing.Numerics;

/** The packed GEMM against a naive float64 triple loop, over tile/block edges, transposes and threads. */
class GemmTest {
    /** (M, N, K) cases: tiny (small path), single tiles, ragged edges, several KC/MC blocks, several NC blocks. */
    private static final int[][] SIZES = {
        {1, 1, 1}, {3, 17, 5}, {6, 32, 16}, {7, 33, 257}, {100, 70, 300}, {13, 200, 64}, {250, 40, 90}, {20, 2100, 40},
    };

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static float[] naive(float[] a, boolean ta, float[] b, boolean tb, float[] c0, int m, int n, int k) {
        float[] c = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = c0 == null ? 0 : c0[i * n + j];
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[p * m + i] : a[i * k + p];
                    double bv = tb ? b[j * k + p] : b[p * n + j];
                    s += av * bv;
                }
                c[i * n + j] = (float) s;
            }
        }
        return c;
    }

    @Test
    void matchesNaiveProductForAllTransposesAndSizes() {
        Random r = new Random(42);
        try (Parallel par = new Parallel(2)) {
            for (int[] size : SIZES) {
                int m = size[0];
                int n = size[1];
                int k = size[2];
                for (boolean ta : new boolean[] {false, true}) {
                    for (boolean tb : new boolean[] {false, true}) {
                        float[] a = random(r, m * k);
                        float[] b = random(r, k * n);
                        float[] c = new float[m * n + 3];
                        Gemm.multiply(par, a, 0, ta, b, 0, tb, c, 3, m, n, k, false);
                        float[] got = java.util.Arrays.copyOfRange(c, 3, c.length);
                        Numerics.assertClose("gemm " + m + "x" + n + "x" + k + " ta=" + ta + " tb=" + tb,
                                new long[] {m, n}, naive(a, ta, b, tb, null, m, n, k), got, 1e-5 * Math.sqrt(k), 1e-6);
                    }
                }
            }
        }
    }

    @Test
    void accumulatesIntoExistingValues() {
        Random r = new Random(7);
        int m = 37;
        int n = 45;
        int k = 300;
        float[] a = random(r, m * k);
        float[] b = random(r, k * n);
        float[] c0 = random(r, m * n);
        float[] c = c0.clone();
        try (Parallel par = new Parallel(2)) {
            Gemm.multiply(par, a, 0, false, b, 0, false, c, 0, m, n, k, true);
        }
        Numerics.assertClose("gemm accumulate", new long[] {m, n}, naive(a, false, b, false, c0, m, n, k), c, 2e-4, 1e-6);
    }

    @Test
    void resultDoesNotDependOnThreadCount() {
        Random r = new Random(3);
        int m = 130;
        int n = 500;
        int k = 270;
        float[] a = random(r, m * k);
        float[] b = random(r, k * n);
        float[] one = new float[m * n];
        float[] two = new float[m * n];
        try (Parallel p1 = new Parallel(1); Parallel p2 = new Parallel(2)) {
            Gemm.multiply(p1, a, 0, false, b, 0, true, one, 0, m, n, k, false);
            Gemm.multiply(p2, a, 0, false, b, 0, true, two, 0, m, n, k, false);
        }
        assertArrayEquals(one, two);
    }
}
