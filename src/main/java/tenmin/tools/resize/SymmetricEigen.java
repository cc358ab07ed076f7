package tenmin.tools.resize;

/**
 * Eigenvalues and eigenvectors of a small dense symmetric matrix in double precision.
 *
 * <p>Householder reduction to tridiagonal form (Golub and Van Loan, Matrix Computations, 4th ed.,
 * algorithm 8.3.1) followed by the implicit QL algorithm with Wilkinson-type shifts on the tridiagonal
 * matrix, the rotations accumulated into the eigenvector matrix (the EISPACK tred2/tql2 scheme). The
 * rank-2 updates, row combinations and rotations run on rows of row-major arrays ({@link DoubleOps}).
 *
 * <p>Used for the r×r core of the low-rank SVD ({@link LowRankSvd}), r ≤ a few hundred.
 */
final class SymmetricEigen {
    private SymmetricEigen() {
    }

    /**
     * Result: {@code values} in descending order; {@code vectors} row-major n×n with eigenvector i in row
     * i ({@code vectors[i*n + k]}), or null when not requested.
     */
    record Result(double[] values, double[] vectors) {
    }

    /**
     * Decomposes the symmetric n×n matrix {@code a} (row-major; only needs to be symmetric, it is
     * overwritten).
     */
    static Result decompose(double[] a, int n, boolean wantVectors) {
        double[] d = new double[n];
        double[] e = new double[n];
        double[] beta = new double[n];
        tridiagonalize(a, n, d, e, beta);
        double[] zt = null;
        if (wantVectors) {
            double[] q = accumulate(a, n, beta); // Q with A = Q T Q^T
            zt = transpose(q, n);                // rows = columns of Q, rotated by the QL sweeps
        }
        ql(d, e, n, zt);
        return sortDescending(d, zt, n);
    }

    /**
     * Householder tridiagonalisation: afterwards d holds the diagonal, e[k] the entry (k, k+1), and
     * column k of a below the subdiagonal holds the Householder vector v_k (v_k[k+1] = 1) with factor
     * beta[k], so that H_k = I - beta_k v_k v_k^T and A = (H_0 ... H_{n-3}) T (H_0 ... H_{n-3})^T.
     */
    private static void tridiagonalize(double[] a, int n, double[] d, double[] e, double[] beta) {
        double[] v = new double[n];
        double[] p = new double[n];
        for (int k = 0; k < n - 2; k++) {
            // x = A[k+1.., k] (stored in row k, columns k+1.., since A is symmetric)
            int m = k + 1;
            double sigma = m + 1 < n ? DoubleOps.dot(a, k * n + m + 1, a, k * n + m + 1, n - m - 1) : 0;
            double x0 = a[k * n + m];
            d[k] = a[k * n + k];
            if (sigma == 0) {
                beta[k] = 0;
                e[k] = x0;
                continue;
            }
            double mu = Math.sqrt(x0 * x0 + sigma);
            double v0 = x0 <= 0 ? x0 - mu : -sigma / (x0 + mu);
            double b = 2 * v0 * v0 / (sigma + v0 * v0);
            // v = x / v0 with v[m] = 1
            v[m] = 1;
            for (int i = m + 1; i < n; i++) {
                v[i] = a[k * n + i] / v0;
            }
            beta[k] = b;
            e[k] = mu;
            // p = b · A' v over the trailing block A' = A[m.., m..] (symmetric: a combination of its rows)
            java.util.Arrays.fill(p, m, n, 0);
            DoubleOps.combineRows(a, m * n + m, n, n - m, v, m, p, m, n - m);
            double pv = 0;
            for (int i = m; i < n; i++) {
                p[i] *= b;
                pv += p[i] * v[i];
            }
            // w = p - (b p^T v / 2) v ; A' -= v w^T + w v^T
            double half = b * pv / 2;
            for (int i = m; i < n; i++) {
                p[i] -= half * v[i];
            }
            DoubleOps.rank2Trailing(a, n, m, n, -1, v, p, -1);
            // keep v_k in row k (columns m+1..), since row k is no longer needed
            for (int i = m + 1; i < n; i++) {
                a[k * n + i] = v[i];
            }
        }
        if (n >= 2) {
            d[n - 2] = a[(n - 2) * n + n - 2];
            e[n - 2] = a[(n - 2) * n + n - 1];
        }
        if (n >= 1) {
            d[n - 1] = a[(n - 1) * n + n - 1];
            e[n - 1] = 0;
        }
    }

    /** Q = H_0 H_1 ... H_{n-3}, accumulated backwards (each H_k touches rows/columns k+1..). */
    private static double[] accumulate(double[] a, int n, double[] beta) {
        double[] q = new double[n * n];
        for (int i = 0; i < n; i++) {
            q[i * n + i] = 1;
        }
        double[] v = new double[n];
        double[] w = new double[n];
        for (int k = n - 3; k >= 0; k--) {
            if (beta[k] == 0) {
                continue;
            }
            int m = k + 1;
            v[m] = 1;
            for (int i = m + 1; i < n; i++) {
                v[i] = a[k * n + i];
            }
            // w = v^T Q[m.., m..] (row combination), then Q[m.., m..] -= beta v w^T
            java.util.Arrays.fill(w, m, n, 0);
            DoubleOps.combineRows(q, m * n + m, n, n - m, v, m, w, m, n - m);
            DoubleOps.rank2Trailing(q, n, m, n, -beta[k], v, w, 0);
        }
        return q;
    }

    /**
     * Implicit QL on the tridiagonal (d, e): eigenvalues into d; rotations applied to the rows of zt
     * (when not null), which hold the columns of the eigenvector matrix.
     */
    private static void ql(double[] d, double[] e, int n, double[] zt) {
        final double eps = Math.ulp(1.0);
        for (int l = 0; l < n; l++) {
            int iterations = 0;
            while (true) {
                int m = l;
                while (m < n - 1) {
                    double dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
                    if (Math.abs(e[m]) <= eps * dd) {
                        break;
                    }
                    m++;
                }
                if (m == l) {
                    break;
                }
                if (++iterations > 60) {
                    throw new ArithmeticException("symmetric eigensolver did not converge (n=" + n + ")");
                }
                double g = (d[l + 1] - d[l]) / (2 * e[l]);
                double r = hypot(g, 1);
                g = d[m] - d[l] + e[l] / (g + Math.copySign(r, g));
                double s = 1;
                double c = 1;
                double p = 0;
                int i;
                boolean underflow = false;
                for (i = m - 1; i >= l; i--) {
                    double f = s * e[i];
                    double b = c * e[i];
                    r = hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0) {
                        d[i + 1] -= p;
                        e[m] = 0;
                        underflow = true;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                    if (zt != null) {
                        DoubleOps.rotateRows(zt, i * n, (i + 1) * n, n, c, s);
                    }
                }
                if (underflow) {
                    continue;
                }
                d[l] -= p;
                e[l] = g;
                e[m] = 0;
            }
        }
    }

    private static Result sortDescending(double[] d, double[] zt, int n) {
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (x, y) -> Double.compare(d[y], d[x]));
        double[] values = new double[n];
        double[] vectors = zt == null ? null : new double[n * n];
        for (int i = 0; i < n; i++) {
            values[i] = d[order[i]];
            if (zt != null) {
                System.arraycopy(zt, order[i] * n, vectors, i * n, n);
            }
        }
        return new Result(values, vectors);
    }

    private static double[] transpose(double[] q, int n) {
        double[] t = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                t[j * n + i] = q[i * n + j];
            }
        }
        return t;
    }

    /** sqrt(x² + y²) without Math.hypot's cost; falls back to it where the squares could overflow or underflow. */
    private static double hypot(double x, double y) {
        double ax = Math.abs(x);
        double ay = Math.abs(y);
        double big = Math.max(ax, ay);
        if (big < 1e150 && big > 1e-150) {
            return Math.sqrt(x * x + y * y);
        }
        return Math.hypot(x, y);
    }
}
