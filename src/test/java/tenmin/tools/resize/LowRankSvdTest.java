package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import tenmin.testing.Numerics;

/**
 * The low-rank SVD against a dense double-precision SVD of the delta (EJML), never the same algorithm; on
 * both linear algebra implementations.
 */
class LowRankSvdTest {
    private static final long SEED = 42;

    static java.util.List<Linalg> linalgs() {
        return Linalgs.all();
    }

    private static float[] random(SplittableRandom rnd, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return x;
    }

    /** up columns with geometrically decaying scale, so the spectrum spans orders of magnitude. */
    private static float[] decayingUp(SplittableRandom rnd, int out, int r, double top, double span) {
        float[] up = new float[out * r];
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < r; j++) {
                double c = top * Math.pow(span, -(double) j / Math.max(1, r - 1));
                up[o * r + j] = (float) ((rnd.nextDouble() * 2 - 1) * c);
            }
        }
        return up;
    }

    private static void checkAgainstDense(Linalg la, String name, float[] up, float[] down, int out, int r, int cols, double alpha) {
        double scale = alpha / r;
        LowRankSvd svd = LowRankSvd.of(up, out, r, down, cols, scale, la);
        double[] dw = Oracle.delta(up, down, out, r, cols, scale);
        Oracle.Svd dense = Oracle.svd(dw, out, cols);
        int m = Math.min(Math.min(out, cols), r);
        assertEquals(m, svd.m, name + ": number of directions");
        for (int i = 0; i < m; i++) {
            // relative to the largest: the low-rank path is accurate to fp32 level for every direction
            assertEquals(dense.s()[i], svd.s[i], 2e-6 * dense.s()[0] + 1e-6 * dense.s()[i],
                    name + ": singular value " + i + " (seed " + SEED + ")");
        }
        for (int keep : new int[] {1, m / 2, m}) {
            if (keep == 0) {
                continue;
            }
            int[] kept = new int[keep];
            for (int i = 0; i < keep; i++) {
                kept[i] = i;
            }
            float[][] f = svd.factors(kept, 1.0, scale, up, down, null);
            // up_new @ down_new · alpha_new / d, with alpha_new / d = alpha / r
            double[] rec = Oracle.delta(f[0], f[1], out, keep, cols, scale);
            double[] expected = dense.truncated(keep);
            double rel = Oracle.relError(expected, rec);
            assertTrue(rel < 2e-5, name + ": reconstruction of the top " + keep + " directions, rel error " + rel);
            // g split evenly: column j of up_new and row j of down_new have equal norms
            for (int j = 0; j < keep; j++) {
                double nu = 0;
                double nd = 0;
                for (int o = 0; o < out; o++) {
                    nu += (double) f[0][o * keep + j] * f[0][o * keep + j];
                }
                for (int c = 0; c < cols; c++) {
                    nd += (double) f[1][j * cols + c] * f[1][j * cols + c];
                }
                assertEquals(Math.sqrt(nu), Math.sqrt(nd), 1e-4 * Math.sqrt(nu), name + ": norms of direction " + j);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void linearModuleMatchesDenseSvd(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED);
        int out = 48;
        int r = 8;
        int cols = 40;
        checkAgainstDense(la, "linear", decayingUp(rnd, out, r, 0.05, 100), random(rnd, r * cols, 1 / Math.sqrt(cols)),
                out, r, cols, 4);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void convModuleWithRankAboveOutMatchesDenseSvd(Linalg la) {
        // conv 3x3: down (r, in*9); r = 24 > out = 16 leaves min(out, cols, r) = 16 directions
        SplittableRandom rnd = new SplittableRandom(SEED + 1);
        int out = 16;
        int r = 24;
        int cols = 8 * 9;
        checkAgainstDense(la, "conv", decayingUp(rnd, out, r, 0.3, 1000), random(rnd, r * cols, 1 / Math.sqrt(cols)),
                out, r, cols, 4);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void rankAboveColsIsTruncatedToCols(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED + 2);
        int out = 30;
        int r = 12;
        int cols = 7;
        checkAgainstDense(la, "wide", random(rnd, out * r, 0.1), random(rnd, r * cols, 0.5), out, r, cols, 1);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void rankDeficientFactorsAreHandled(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED + 3);
        int out = 20;
        int r = 6;
        int cols = 25;
        float[] up = random(rnd, out * r, 0.1);
        float[] down = random(rnd, r * cols, 0.2);
        for (int o = 0; o < out; o++) {
            up[o * r + 2] = 0; // a dead rank in up
        }
        System.arraycopy(down, 0, down, 4 * cols, cols); // down row 4 = row 0
        LowRankSvd svd = LowRankSvd.of(up, out, r, down, cols, 1.0 / r, la);
        double[] dense = Oracle.svd(Oracle.delta(up, down, out, r, cols, 1.0 / r), out, cols).s();
        for (int i = 0; i < svd.m; i++) {
            assertEquals(dense[i], svd.s[i], 1e-6 * dense[0], "singular value " + i);
        }
        int[] kept = {0, 1, 2};
        float[][] f = svd.factors(kept, 1.0, 1.0 / r, up, down, null);
        double[] rec = Oracle.delta(f[0], f[1], out, 3, cols, 1.0 / r);
        double[] expected = Oracle.svd(Oracle.delta(up, down, out, r, cols, 1.0 / r), out, cols).truncated(3);
        assertTrue(Oracle.relError(expected, rec) < 1e-5);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void zeroUpGivesZeroSingularValues(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED + 4);
        LowRankSvd svd = LowRankSvd.of(new float[16 * 4], 16, 4, random(rnd, 4 * 10, 0.3), 10, 0.5, la);
        for (float s : svd.s) {
            assertEquals(0, s);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void rescaleMultipliesTheKeptSingularValues(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED + 5);
        int out = 12;
        int r = 4;
        int cols = 10;
        float[] up = random(rnd, out * r, 0.2);
        float[] down = random(rnd, r * cols, 0.3);
        LowRankSvd svd = LowRankSvd.of(up, out, r, down, cols, 2.0 / r, la);
        int[] all = {0, 1, 2, 3};
        float[][] f = svd.factors(all, 0.5, 2.0 / r, up, down, new float[1]);
        double[] rec = Oracle.delta(f[0], f[1], out, 4, cols, 2.0 / r);
        double[] dw = Oracle.delta(up, down, out, r, cols, 2.0 / r);
        float[] expected = new float[dw.length];
        float[] actual = new float[dw.length];
        for (int i = 0; i < dw.length; i++) {
            expected[i] = (float) (0.5 * dw[i]);
            actual[i] = (float) rec[i];
        }
        Numerics.assertRelClose("rescaled delta", new long[] {out, cols}, expected, actual, 1e-5);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("linalgs")
    void unitVectorsGiveTheSubspaceTerm(Linalg la) {
        SplittableRandom rnd = new SplittableRandom(SEED + 6);
        int out = 10;
        int r = 3;
        int cols = 9;
        float[] up = random(rnd, out * r, 0.2);
        float[] down = random(rnd, r * cols, 0.3);
        LowRankSvd svd = LowRankSvd.of(up, out, r, down, cols, 1.0, la);
        float[][] uv = svd.vectors(up, down);
        Oracle.Svd dense = Oracle.svd(Oracle.delta(up, down, out, r, cols, 1.0), out, cols);
        float[] w = random(rnd, out * cols, 1);
        float[] t = BaseNorms.subspace(w, out, cols, uv[0], uv[1], svd.m);
        for (int i = 0; i < svd.m; i++) {
            double expected = 0; // |u_i^T W v_i|, sign-independent
            for (int o = 0; o < out; o++) {
                for (int c = 0; c < cols; c++) {
                    expected += dense.u().get(o, i) * w[o * cols + c] * dense.v().get(c, i);
                }
            }
            assertEquals(Math.abs(expected), t[i], 1e-5 * (1 + Math.abs(expected)), "direction " + i);
        }
    }
}
