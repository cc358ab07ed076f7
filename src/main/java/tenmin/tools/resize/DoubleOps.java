package tenmin.tools.resize;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorised double-precision row operations for the small dense r×r algebra of resize (Cholesky,
 * tridiagonalisation, eigenvector accumulation). Each method does a whole block of work per call, so
 * the JIT compiles a handful of compact loops once instead of inlining vector code into every caller
 * (which costs far more compile time than a two-second run can afford).
 *
 * <p>All matrices are row-major with leading dimension {@code ld}.
 */
final class DoubleOps {
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    private DoubleOps() {
    }

    /**
     * y[y0 + j] += Σ_{k < rows} c[c0 + k] · x[x0 + k·ld + j] for j < len: a linear combination of
     * {@code rows} row segments added to y.
     */
    static void combineRows(double[] x, int x0, int ld, int rows, double[] c, int c0, double[] y, int y0, int len) {
        int step = 4 * D.length();
        int j = 0;
        for (; j + step <= len; j += step) {
            int l = D.length();
            DoubleVector a0 = DoubleVector.fromArray(D, y, y0 + j);
            DoubleVector a1 = DoubleVector.fromArray(D, y, y0 + j + l);
            DoubleVector a2 = DoubleVector.fromArray(D, y, y0 + j + 2 * l);
            DoubleVector a3 = DoubleVector.fromArray(D, y, y0 + j + 3 * l);
            for (int k = 0; k < rows; k++) {
                double ck = c[c0 + k];
                if (ck == 0) {
                    continue;
                }
                DoubleVector vc = DoubleVector.broadcast(D, ck);
                int o = x0 + k * ld + j;
                a0 = vc.fma(DoubleVector.fromArray(D, x, o), a0);
                a1 = vc.fma(DoubleVector.fromArray(D, x, o + l), a1);
                a2 = vc.fma(DoubleVector.fromArray(D, x, o + 2 * l), a2);
                a3 = vc.fma(DoubleVector.fromArray(D, x, o + 3 * l), a3);
            }
            a0.intoArray(y, y0 + j);
            a1.intoArray(y, y0 + j + l);
            a2.intoArray(y, y0 + j + 2 * l);
            a3.intoArray(y, y0 + j + 3 * l);
        }
        for (; j + D.length() <= len; j += D.length()) {
            DoubleVector a = DoubleVector.fromArray(D, y, y0 + j);
            for (int k = 0; k < rows; k++) {
                a = DoubleVector.broadcast(D, c[c0 + k]).fma(DoubleVector.fromArray(D, x, x0 + k * ld + j), a);
            }
            a.intoArray(y, y0 + j);
        }
        for (; j < len; j++) {
            double s = y[y0 + j];
            for (int k = 0; k < rows; k++) {
                s += c[c0 + k] * x[x0 + k * ld + j];
            }
            y[y0 + j] = s;
        }
    }

    /**
     * a[i][m..n) += s1·u[i]·w[m..n) + s2·w[i]·u[m..n) for rows i in [m, n): the symmetric rank-2 update
     * of a trailing block (s2 = 0 gives a rank-1 update).
     */
    static void rank2Trailing(double[] a, int ld, int m, int n, double s1, double[] u, double[] w, double s2) {
        int len = n - m;
        int bound = m + D.loopBound(len);
        for (int i = m; i < n; i++) {
            double p = s1 * u[i];
            double q = s2 * w[i];
            DoubleVector vp = DoubleVector.broadcast(D, p);
            DoubleVector vq = DoubleVector.broadcast(D, q);
            int row = i * ld;
            int j = m;
            for (; j < bound; j += D.length()) {
                DoubleVector r = DoubleVector.fromArray(D, a, row + j);
                r = vp.fma(DoubleVector.fromArray(D, w, j), r);
                r = vq.fma(DoubleVector.fromArray(D, u, j), r);
                r.intoArray(a, row + j);
            }
            for (; j < n; j++) {
                a[row + j] += p * w[j] + q * u[j];
            }
        }
    }

    /** (x, y) ← (c·x − s·y, s·x + c·y) for the rows x = z[xi..xi+len), y = z[yi..yi+len). */
    static void rotateRows(double[] z, int xi, int yi, int len, double c, double s) {
        DoubleVector vc = DoubleVector.broadcast(D, c);
        DoubleVector vs = DoubleVector.broadcast(D, s);
        int k = 0;
        int bound = D.loopBound(len);
        for (; k < bound; k += D.length()) {
            DoubleVector x = DoubleVector.fromArray(D, z, xi + k);
            DoubleVector y = DoubleVector.fromArray(D, z, yi + k);
            x.mul(vc).sub(y.mul(vs)).intoArray(z, xi + k);
            x.mul(vs).add(y.mul(vc)).intoArray(z, yi + k);
        }
        for (; k < len; k++) {
            double x = z[xi + k];
            double y = z[yi + k];
            z[xi + k] = c * x - s * y;
            z[yi + k] = s * x + c * y;
        }
    }

    /** Σ a[ai+k]·b[bi+k] for k < len. */
    static double dot(double[] a, int ai, double[] b, int bi, int len) {
        DoubleVector acc = DoubleVector.zero(D);
        int k = 0;
        int bound = D.loopBound(len);
        for (; k < bound; k += D.length()) {
            acc = DoubleVector.fromArray(D, a, ai + k).fma(DoubleVector.fromArray(D, b, bi + k), acc);
        }
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; k < len; k++) {
            s += a[ai + k] * b[bi + k];
        }
        return s;
    }
}
