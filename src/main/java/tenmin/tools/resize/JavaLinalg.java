package tenmin.tools.resize;

/**
 * {@link Linalg} on resize's own kernels: {@link Kernels} (Gram matrices, fp32 products), {@link DoubleOps}
 * (row combinations of the triangular algebra) and {@link SymmetricEigen}.
 */
final class JavaLinalg implements Linalg {
    /** Rows per block when combining rows of a triangular matrix (skips most of its zero half). */
    private static final int TRIANGLE_BLOCK = 32;

    @Override
    public String describe() {
        return "Java kernels";
    }

    @Override
    public double[] gramOfColumns(float[] up, int out, int rank) {
        return Kernels.gramRows(transpose(up, out, rank), rank, out);
    }

    @Override
    public double[] gramOfRows(float[] down, int rank, int cols) {
        return Kernels.gramRows(down, rank, cols);
    }

    @Override
    public double[] choleskyUpper(double[] g, int n) {
        double tol = LowRankSvd.CHOLESKY_RELATIVE_TOLERANCE * maxDiagonal(g, n);
        double[] r = new double[n * n];
        double[] row = new double[n];
        double[] col = new double[n];
        for (int j = 0; j < n; j++) {
            // row = G[j, j..] - Σ_{k<j} R[k][j] · R[k, j..]
            System.arraycopy(g, j * n + j, row, j, n - j);
            for (int k = 0; k < j; k++) {
                col[k] = -r[k * n + j];
            }
            DoubleOps.combineRows(r, j, n, j, col, 0, row, j, n - j);
            double pivot = row[j];
            if (!(pivot > tol)) {
                continue; // dependent column: zero row
            }
            double diag = Math.sqrt(pivot);
            r[j * n + j] = diag;
            for (int l = j + 1; l < n; l++) {
                r[j * n + l] = row[l] / diag;
            }
        }
        return r;
    }

    @Override
    public double[] sandwich(double[] r, double[] g, int n) {
        double[] t = new double[n * n]; // R G: row i = Σ_{k≥i} R[i][k] · row k of G
        for (int i = 0; i < n; i++) {
            DoubleOps.combineRows(g, i * n, n, n - i, r, i * n + i, t, i * n, n);
        }
        double[] rt = new double[n * n]; // Rᵀ (lower triangular)
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                rt[j * n + i] = r[i * n + j];
            }
        }
        double[] p = new double[n * n]; // (R G) Rᵀ: row i = Σ_k T[i][k] · row k of Rᵀ (nonzero up to column k)
        for (int i = 0; i < n; i++) {
            for (int k0 = 0; k0 < n; k0 += TRIANGLE_BLOCK) {
                int k1 = Math.min(n, k0 + TRIANGLE_BLOCK);
                DoubleOps.combineRows(rt, k0 * n, n, k1 - k0, t, i * n + k0, p, i * n, k1);
            }
        }
        symmetrize(p, n);
        return p;
    }

    /** The largest diagonal entry of {@code g} (N, N) (0 for an empty or non-positive diagonal). */
    static double maxDiagonal(double[] g, int n) {
        double max = 0;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, g[i * n + i]);
        }
        return max;
    }

    /** Averages the two triangles, so the eigensolver sees an exactly symmetric matrix. */
    static void symmetrize(double[] p, int n) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                double v = 0.5 * (p[i * n + j] + p[j * n + i]);
                p[i * n + j] = v;
                p[j * n + i] = v;
            }
        }
    }

    @Override
    public SymmetricEigen.Result eigen(double[] p, int n) {
        return SymmetricEigen.decompose(p, n, true);
    }

    @Override
    public double[][] directions(double[] v, int m, double[] rd, double[] gu, int rank) {
        double[] a = new double[m * rank];
        double[] b = new double[m * rank];
        for (int i = 0; i < m; i++) {
            // A_i = Σ_j V_i[j] · (row j of Rd), rows nonzero from column j on
            for (int j0 = 0; j0 < rank; j0 += TRIANGLE_BLOCK) {
                int j1 = Math.min(rank, j0 + TRIANGLE_BLOCK);
                DoubleOps.combineRows(rd, j0 * rank + j0, rank, j1 - j0, v, i * rank + j0, a, i * rank + j0, rank - j0);
            }
            // B_i = Σ_k A_i[k] · row k of Gu
            DoubleOps.combineRows(gu, 0, rank, rank, a, i * rank, b, i * rank, rank);
        }
        return new double[][] {a, b};
    }

    @Override
    public float[] multiply(float[] k, int d, int rank, float[] x, int n, float[] c) {
        return Kernels.multiplySmallK(k, d, rank, x, n, c);
    }

    @Override
    public float[] multiplyByTransposed(float[] k, int d, int rank, float[] up, int out) {
        return Kernels.multiplySmallK(k, d, rank, transpose(up, out, rank), out);
    }

    @Override
    public float[] multiplyTransposed(float[] up, int out, int rank, float[] k, int d) {
        return transpose(multiplyByTransposed(k, d, rank, up, out), d, out);
    }

    static float[] transpose(float[] x, int rows, int cols) {
        float[] t = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        return t;
    }

    @Override
    public String toString() {
        return describe();
    }
}
