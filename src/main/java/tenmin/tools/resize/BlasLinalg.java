package tenmin.tools.resize;

import tenmin.engine.blas.OpenBlas;

/**
 * {@link Linalg} on OpenBLAS: {@code dsyrk} for the Gram matrices (the fp32 factors widened to double, so
 * products stay exact as in {@link Kernels#gramRows}), {@code dpotrf} for the Cholesky factor (with the Java
 * rank-revealing factorisation where a pivot falls to rounding level), {@code dgemm} for the r×r products,
 * {@code dsyevd} for the eigenproblem and {@code sgemm} for the fp32 output factors.
 */
final class BlasLinalg implements Linalg {
    private final OpenBlas blas;
    /** Per-thread widening buffer for fp32 factors (resize itself reads its factors straight into double). */
    private final ThreadLocal<double[]> wide = ThreadLocal.withInitial(() -> new double[0]);

    BlasLinalg(OpenBlas blas) {
        this.blas = blas;
    }

    @Override
    public String describe() {
        return blas.config();
    }

    private double[] widened(float[] x, int n) {
        double[] w = wide.get();
        if (w.length < n) {
            w = new double[n];
            wide.set(w);
        }
        for (int i = 0; i < n; i++) {
            w[i] = x[i];
        }
        return w;
    }

    @Override
    public double[] gramOfColumns(float[] up, int out, int rank) {
        return gramOfColumns(widened(up, out * rank), out, rank);
    }

    @Override
    public double[] gramOfRows(float[] down, int rank, int cols) {
        return gramOfRows(widened(down, rank * cols), rank, cols);
    }

    /** {@link #gramOfColumns(float[], int, int)} of a factor already widened to double (read so from the file). */
    double[] gramOfColumns(double[] up, int out, int rank) {
        double[] g = new double[rank * rank];
        blas.gramColumns(up, out, rank, g);
        return g;
    }

    /** The OpenBLAS calls themselves, for a caller that sums a Gram matrix over blocks of columns. */
    OpenBlas blas() {
        return blas;
    }

    private double[] gramOfRows(double[] down, int rank, int cols) {
        double[] g = new double[rank * rank];
        blas.gramRows(down, rank, cols, g);
        return g;
    }

    @Override
    public double[] choleskyUpper(double[] g, int n) {
        double maxDiag = JavaLinalg.maxDiagonal(g, n);
        double[] r = g.clone();
        if (maxDiag > 0 && blas.choleskyUpper(r, n)) {
            double minPivot = LowRankSvd.CHOLESKY_RELATIVE_TOLERANCE * maxDiag;
            boolean clear = true;
            for (int i = 0; i < n && clear; i++) {
                double d = r[i * n + i];
                clear = d * d > minPivot;
            }
            if (clear) {
                return r;
            }
        }
        return Linalg.JAVA.choleskyUpper(g, n); // (nearly) dependent columns: the rank-revealing form
    }

    @Override
    public double[] sandwich(double[] r, double[] g, int n) {
        double[] t = new double[n * n];
        blas.multiply(false, false, n, n, n, r, g, t);      // R G
        double[] p = new double[n * n];
        blas.multiply(false, true, n, n, n, t, r, p);       // (R G) Rᵀ
        JavaLinalg.symmetrize(p, n);
        return p;
    }

    @Override
    public SymmetricEigen.Result eigen(double[] p, int n) {
        double[] values = new double[n];
        blas.symmetricEigen(p, n, values);
        return new SymmetricEigen.Result(values, p);
    }

    @Override
    public double[][] directions(double[] v, int m, double[] rd, double[] gu, int rank) {
        double[] a = new double[m * rank];
        double[] b = new double[m * rank];
        blas.multiply(false, false, m, rank, rank, v, rd, a);
        blas.multiply(false, false, m, rank, rank, a, gu, b);
        return new double[][] {a, b};
    }

    @Override
    public float[] multiply(float[] k, int d, int rank, float[] x, int n, float[] c) {
        blas.multiply(false, false, d, n, rank, k, x, c);
        return c;
    }

    @Override
    public float[] multiplyByTransposed(float[] k, int d, int rank, float[] up, int out) {
        float[] c = new float[d * out];
        blas.multiply(false, true, d, out, rank, k, up, c);
        return c;
    }

    @Override
    public float[] multiplyTransposed(float[] up, int out, int rank, float[] k, int d) {
        float[] c = new float[out * d];
        blas.multiply(false, true, out, d, rank, up, k, c);
        return c;
    }

    @Override
    public String toString() {
        return describe();
    }
}
