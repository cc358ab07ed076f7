package tenmin.tools.resize;

import tenmin.core.InputException;
import tenmin.engine.blas.OpenBlas;

/**
 * The dense linear algebra of a low-rank SVD ({@link LowRankSvd}): by resize's own Java kernels
 * ({@link #JAVA}), or by OpenBLAS ({@link #openBlas}), which needs no JIT warm-up: on the guide's LoCon a fresh
 * JVM spends about as much CPU compiling the Java kernels as running them (docs/PERFORMANCE.md, resize).
 * Both compute the same quantities in the same precision (double for the r×r algebra, fp32 products for the
 * output factors); they differ in rounding order and in the signs of singular vectors.
 *
 * <p>Dimension legend: R rank, OUT rows of up, N columns of down (in·k·k), D kept directions.
 */
interface Linalg {
    /** Resize's own Java kernels (Vector API). */
    Linalg JAVA = new JavaLinalg();

    /** The OpenBLAS implementation. */
    static Linalg openBlas(OpenBlas blas) {
        return new BlasLinalg(blas);
    }

    /**
     * The implementation {@code choice} names: for {@link LinearAlgebra#AUTO} OpenBLAS when
     * {@link OpenBlas#find()} finds one, else Java; for {@link LinearAlgebra#OPENBLAS} an
     * {@link InputException} saying why none was found.
     */
    static Linalg of(LinearAlgebra choice) {
        return of(choice, OpenBlas::find);
    }

    /** {@link #of(LinearAlgebra)} with {@code finder} in place of {@link OpenBlas#find()} (asked only when needed). */
    static Linalg of(LinearAlgebra choice, java.util.function.Supplier<OpenBlas.Found> finder) {
        if (choice == LinearAlgebra.JAVA) {
            return JAVA;
        }
        OpenBlas.Found found = finder.get();
        if (found.blas() != null) {
            return openBlas(found.blas());
        }
        if (choice == LinearAlgebra.OPENBLAS) {
            throw new InputException("--linalg openblas: no usable OpenBLAS (" + found.why() + "); set "
                    + OpenBlas.ENV + " to a libopenblas.so.0, or build once with Maven to unpack it");
        }
        return JAVA;
    }

    /** A short name for logs: {@code Java kernels} or the OpenBLAS build. */
    String describe();

    /** {@code upᵀ·up} (R, R) for up (OUT, R) fp32, accumulated in double. */
    double[] gramOfColumns(float[] up, int out, int rank);

    /** {@code down·downᵀ} (R, R) for down (R, N) fp32, accumulated in double. */
    double[] gramOfRows(float[] down, int rank, int cols);

    /**
     * Upper-triangular R (N, N) with RᵀR = G for a symmetric positive semi-definite G, rank-revealing: a
     * pivot at rounding level ({@link LowRankSvd#CHOLESKY_RELATIVE_TOLERANCE} of the largest diagonal entry)
     * marks a dependent column, whose row of R is zero. {@code g} is not modified.
     */
    double[] choleskyUpper(double[] g, int n);

    /** {@code P = R·G·Rᵀ} (N, N), exactly symmetric, for R upper triangular and G symmetric. */
    double[] sandwich(double[] r, double[] g, int n);

    /** Eigenpairs of a symmetric {@code p} (N, N), values descending, vector i in row i; {@code p} is overwritten. */
    SymmetricEigen.Result eigen(double[] p, int n);

    /**
     * The direction coefficients of {@link LowRankSvd}: {@code A = V·Rd} (M, R) for the first M rows of
     * {@code v} (R, R) and Rd (R, R) upper triangular, and {@code B = A·Gu} (M, R) for Gu (R, R) symmetric.
     *
     * @return {A, B}
     */
    double[][] directions(double[] v, int m, double[] rd, double[] gu, int rank);

    /** {@code c = k·x} (D, N) for k (D, R), x (R, N) fp32; into {@code c} (at least D·N long). */
    float[] multiply(float[] k, int d, int rank, float[] x, int n, float[] c);

    /** {@code k·upᵀ} (D, OUT) for k (D, R), up (OUT, R) fp32. */
    float[] multiplyByTransposed(float[] k, int d, int rank, float[] up, int out);

    /** {@code up·kᵀ} (OUT, D) for up (OUT, R), k (D, R) fp32. */
    float[] multiplyTransposed(float[] up, int out, int rank, float[] k, int d);
}
