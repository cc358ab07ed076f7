package tenmin.tools.resize;

/**
 * The SVD of a LoRA delta {@code ΔW = (alpha/r)·up·down} through its low-rank factors, never forming the
 * dense (out, in·k·k) delta (postprocess-spec §2.4, java-ecosystem §4.1).
 *
 * <p>Maths. With the thin QR factorisations {@code up = Qu·Ru} and {@code downᵀ = Qd·Rd}, the singular
 * values of {@code up·down} are those of the r×r core {@code C = Ru·Rdᵀ}. The R factors are computed
 * as Cholesky factors of the Gram matrices ({@code Gu = upᵀup = RuᵀRu}, {@code Gd = down·downᵀ = RdᵀRd},
 * "CholeskyQR"), accumulated in double: products of fp32 inputs are exact in double, so the Gram
 * matrices carry about 1e-16 relative error and the singular values come out at least as accurate as the
 * reference's fp32 Householder QR for every direction above 1e-8 of the largest. The core's right
 * singular vectors {@code Vc} and values are the eigenpairs of {@code P = CᵀC = Rd·Gu·Rdᵀ} (double).
 * The singular vectors of ΔW follow without the Q factors:
 * <pre>
 *   u_i = up·(down·v_i) / s_i   = up·(Rdᵀ Vc_i) / s_i   = up·A_i / s_i,      A_i = Rdᵀ Vc_i
 *   v_i = downᵀ·(upᵀ·u_i) / s_i = downᵀ·(Gu A_i) / s_i² = downᵀ·B_i / s_i²,   B_i = Gu A_i
 * </pre>
 * where s_i are the singular values of {@code up·down} (unscaled). Only r×r work and two thin products
 * with the original factors remain.
 *
 * <p>Dimension legend: R rank of the LoRA module, OUT rows of up, N = in·k·k columns of down,
 * M = min(OUT, N, R) singular directions (the reference's count).
 */
final class LowRankSvd {
    /** Gram pivots below this fraction of the largest are treated as exact linear dependence. */
    private static final double CHOLESKY_RELATIVE_TOLERANCE = 1e-13;
    /** Rows per block when combining rows of a triangular matrix (skips most of its zero half). */
    private static final int TRIANGLE_BLOCK = 32;

    final int rank;       // R
    final int out;        // OUT
    final int cols;       // N
    final int m;          // M
    /** Singular values of ΔW (alpha/r applied), fp32 as the reference holds them, descending; (M). */
    final float[] s;
    /** Singular values of up·down (no alpha/r), double; (M). */
    final double[] sRaw;
    private final double[] a; // (M, R) rows A_i
    private final double[] b; // (M, R) rows B_i

    private LowRankSvd(int rank, int out, int cols, float[] s, double[] sRaw, double[] a, double[] b) {
        this.rank = rank;
        this.out = out;
        this.cols = cols;
        this.m = s.length;
        this.s = s;
        this.sRaw = sRaw;
        this.a = a;
        this.b = b;
    }

    /**
     * Decomposes {@code (alphaFactor)·up·down}; up (OUT, R) and down (R, N) row-major fp32.
     */
    static LowRankSvd of(float[] up, int out, int rank, float[] down, int cols, double alphaFactor) {
        float[] upT = transpose(up, out, rank);                 // (R, OUT)
        double[] gu = Kernels.gramRows(upT, rank, out);         // (R, R) = upᵀ up
        double[] gd = Kernels.gramRows(down, rank, cols);       // (R, R) = down downᵀ
        double[] rd = choleskyUpper(gd, rank);                  // (R, R), Rdᵀ Rd = Gd
        double[] p = sandwich(rd, gu, rank);                    // (R, R) = Rd Gu Rdᵀ
        SymmetricEigen.Result eig = SymmetricEigen.decompose(p, rank, true);
        int m = Math.min(Math.min(out, cols), rank);
        float[] s = new float[m];
        double[] sRaw = new double[m];
        float alphaF = (float) alphaFactor; // torch multiplies the fp32 tensor by the scalar in fp32
        for (int i = 0; i < m; i++) {
            sRaw[i] = Math.sqrt(Math.max(eig.values()[i], 0));
            s[i] = (float) sRaw[i] * alphaF;
        }
        double[] a = new double[m * rank];
        double[] b = new double[m * rank];
        double[] vc = eig.vectors();
        for (int i = 0; i < m; i++) {
            // A_i = Rdᵀ Vc_i = Σ_j Vc_i[j] · (row j of Rd), rows nonzero from column j on
            for (int j0 = 0; j0 < rank; j0 += TRIANGLE_BLOCK) {
                int j1 = Math.min(rank, j0 + TRIANGLE_BLOCK);
                DoubleOps.combineRows(rd, j0 * rank + j0, rank, j1 - j0, vc, i * rank + j0, a, i * rank + j0, rank - j0);
            }
            // B_i = Gu A_i (Gu symmetric: Σ_k A_i[k] · row k of Gu)
            DoubleOps.combineRows(gu, 0, rank, rank, a, i * rank, b, i * rank, rank);
        }
        return new LowRankSvd(rank, out, cols, s, sRaw, a, b);
    }

    /**
     * The new factors for the kept directions, with the rescaled singular values split evenly between
     * them (§2.6): {@code g = sqrt(S'·rescale/alphaFactor)}, {@code upNew = U'·diag(g)} (OUT, D),
     * {@code downNew = diag(g)·Vh'} (D, N). {@code up} and {@code down} are the original factors.
     *
     * {@code up} and {@code down} may be longer than needed (work arrays); {@code downInto} receives downNew
     * when it holds at least D·N values (else a new array is made).
     *
     * @return {upNew (OUT, D) row-major, downNew (D, N) row-major, possibly longer than D·N}
     */
    float[][] factors(int[] kept, double rescale, double alphaFactor, float[] up, float[] down, float[] downInto) {
        int d = kept.length;
        float[] ku = new float[d * rank]; // (D, R): row j = A_kj · g_j / s_kj
        float[] kd = new float[d * rank]; // (D, R): row j = B_kj · g_j / s_kj²
        float rescaleF = (float) rescale;
        float alphaF = (float) alphaFactor;
        for (int j = 0; j < d; j++) {
            int i = kept[j];
            float g = (float) Math.sqrt(s[i] * rescaleF / alphaF);
            double su = g / sRaw[i];
            double sv = g / (sRaw[i] * sRaw[i]);
            if (sRaw[i] == 0) {
                su = 0;
                sv = 0;
            }
            for (int k = 0; k < rank; k++) {
                ku[j * rank + k] = (float) (a[i * rank + k] * su);
                kd[j * rank + k] = (float) (b[i * rank + k] * sv);
            }
        }
        float[] upT = transpose(up, out, rank);                               // (R, OUT)
        float[] upNewT = Kernels.multiplySmallK(ku, d, rank, upT, out);      // (D, OUT)
        float[] dst = downInto != null && downInto.length >= d * cols ? downInto : new float[d * cols];
        float[] downNew = Kernels.multiplySmallK(kd, d, rank, down, cols, dst); // (D, N)
        return new float[][] {transpose(upNewT, d, out), downNew};
    }

    /**
     * Unit singular vectors of all M directions: {u (M, OUT) rows u_i, v (M, N) rows v_i}. Directions with
     * a zero singular value have no defined vectors and come back as zero rows.
     */
    float[][] vectors(float[] up, float[] down) {
        float[] ku = new float[m * rank];
        float[] kv = new float[m * rank];
        for (int i = 0; i < m; i++) {
            if (sRaw[i] == 0) {
                continue;
            }
            for (int k = 0; k < rank; k++) {
                ku[i * rank + k] = (float) (a[i * rank + k] / sRaw[i]);
                kv[i * rank + k] = (float) (b[i * rank + k] / (sRaw[i] * sRaw[i]));
            }
        }
        float[] u = Kernels.multiplySmallK(ku, m, rank, transpose(up, out, rank), out);
        float[] v = Kernels.multiplySmallK(kv, m, rank, down, cols);
        normalizeRows(u, m, out);
        normalizeRows(v, m, cols);
        return new float[][] {u, v};
    }

    private static void normalizeRows(float[] x, int rows, int cols) {
        for (int i = 0; i < rows; i++) {
            double n2 = Kernels.dot(x, i * cols, x, i * cols, cols);
            if (n2 > 0) {
                float inv = (float) (1 / Math.sqrt(n2));
                for (int k = 0; k < cols; k++) {
                    x[i * cols + k] *= inv;
                }
            }
        }
    }

    /**
     * Upper-triangular R with RᵀR = G for a symmetric positive semi-definite G (n, n). A pivot that falls
     * to rounding level marks a linearly dependent column; its row of R is left zero, which keeps RᵀR = G
     * up to that rounding (the rank-revealing form of the Cholesky factorisation).
     */
    static double[] choleskyUpper(double[] g, int n) {
        double maxDiag = 0;
        for (int i = 0; i < n; i++) {
            maxDiag = Math.max(maxDiag, g[i * n + i]);
        }
        double tol = CHOLESKY_RELATIVE_TOLERANCE * maxDiag;
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

    /** P = R·G·Rᵀ for R upper triangular and G symmetric, both (n, n); exactly symmetric. */
    static double[] sandwich(double[] r, double[] g, int n) {
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
        for (int i = 0; i < n; i++) { // exact symmetry for the eigensolver
            for (int j = 0; j < i; j++) {
                double v = 0.5 * (p[i * n + j] + p[j * n + i]);
                p[i * n + j] = v;
                p[j * n + i] = v;
            }
        }
        return p;
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
}
