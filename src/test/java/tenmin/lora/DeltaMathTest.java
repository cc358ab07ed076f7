package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import tenmin.engine.blas.OpenBlas;

/**
 * {@link DeltaMath#addDelta} on the Java kernel and on OpenBLAS against a plain double-precision loop: whole
 * weights and row chunks of a fused weight (rows outside the chunk untouched), ranks that are and are not
 * multiples of four, column counts that are not multiples of the vector length.
 */
class DeltaMathTest {
    private static float[] random(SplittableRandom rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return x;
    }

    @Test
    void frobeniusNormMatchesTheDenseDeltaOnBothPaths() {
        OpenBlas.Found found = OpenBlas.find();
        assertNotNull(found.blas(), () -> "no OpenBLAS (the build unpacks it): " + found.why());
        SplittableRandom rnd = new SplittableRandom(10);
        // {rows, rank, cols}: D spans two column blocks and a partial one in the second case
        for (int[] c : new int[][] {{9, 4, 37}, {20, 8, 1100}, {3, 1, 5}}) {
            int rows = c[0];
            int rank = c[1];
            int cols = c[2];
            float[] up = random(rnd, rows * rank);
            float[] down = random(rnd, rank * cols);
            double sum = 0;
            for (int o = 0; o < rows; o++) {
                for (int k = 0; k < cols; k++) {
                    double d = 0;
                    for (int j = 0; j < rank; j++) {
                        d += (double) up[o * rank + j] * down[j * cols + k];
                    }
                    sum += d * d;
                }
            }
            double expected = 0.5 * Math.sqrt(sum);
            for (OpenBlas blas : new OpenBlas[] {null, found.blas()}) {
                assertEquals(expected, DeltaMath.frobeniusNorm(blas, up, down, rows, rank, cols, -0.5), 1e-5 * expected,
                        (blas == null ? "Java" : "OpenBLAS") + " " + java.util.Arrays.toString(c));
            }
        }
    }

    @Test
    void addDeltaMatchesAPlainLoopOnBothPaths() {
        OpenBlas.Found found = OpenBlas.find();
        assertNotNull(found.blas(), () -> "no OpenBLAS (the build unpacks it): " + found.why());
        SplittableRandom rnd = new SplittableRandom(9);
        // {total rows of W, rows of the chunk, row offset, rank, cols}
        for (int[] c : new int[][] {{7, 7, 0, 4, 37}, {48, 16, 16, 8, 130}, {30, 10, 20, 3, 19}, {5, 5, 0, 1, 1}}) {
            int total = c[0];
            int rows = c[1];
            int offset = c[2];
            int rank = c[3];
            int cols = c[4];
            float[] w = random(rnd, total * cols);
            float[] up = random(rnd, rows * rank);
            float[] down = random(rnd, rank * cols);
            float scale = 0.37f;
            for (OpenBlas blas : new OpenBlas[] {null, found.blas()}) {
                float[] out = w.clone();
                DeltaMath.addDelta(blas, out, offset, up, down, rows, rank, cols, scale);
                for (int o = 0; o < total; o++) {
                    for (int k = 0; k < cols; k++) {
                        double expected = w[o * cols + k];
                        if (o >= offset && o < offset + rows) {
                            double s = 0;
                            for (int j = 0; j < rank; j++) {
                                s += (double) up[(o - offset) * rank + j] * down[j * cols + k];
                            }
                            expected += scale * s;
                        }
                        assertEquals(expected, out[o * cols + k], 1e-5 * (1 + rank),
                                (blas == null ? "Java" : "OpenBLAS") + " W[" + o + "][" + k + "] of " + java.util.Arrays.toString(c));
                    }
                }
            }
        }
    }
}
