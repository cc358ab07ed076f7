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
    static final double CHOLESKY_RELATIVE_TOLERANCE = 1e-13;

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
    private final Linalg linalg;

    private LowRankSvd(int rank, int out, int cols, float[] s, double[] sRaw, double[] a, double[] b, Linalg linalg) {
        this.rank = rank;
        this.out = out;
        this.cols = cols;
        this.m = s.length;
        this.s = s;
        this.sRaw = sRaw;
        this.a = a;
        this.b = b;
        this.linalg = linalg;
    }

    /** {@link #of(float[], int, int, float[], int, double, Linalg)} with the Java kernels. */
    static LowRankSvd of(float[] up, int out, int rank, float[] down, int cols, double alphaFactor) {
        return of(up, out, rank, down, cols, alphaFactor, Linalg.JAVA);
    }

    /**
     * Decomposes {@code (alphaFactor)·up·down}; up (OUT, R) and down (R, N) row-major fp32. Later
     * {@link #factors} and {@link #vectors} use the same {@code linalg}.
     */
    static LowRankSvd of(float[] up, int out, int rank, float[] down, int cols, double alphaFactor, Linalg linalg) {
        double[] gu = linalg.gramOfColumns(up, out, rank);     // (R, R) = upᵀ up
        double[] gd = linalg.gramOfRows(down, rank, cols);     // (R, R) = down downᵀ
        return ofGrams(gu, gd, out, rank, cols, alphaFactor, linalg);
    }

    /**
     * Decomposes {@code (alphaFactor)·up·down} given the Gram matrices {@code gu = upᵀ·up} and
     * {@code gd = down·downᵀ} (R, R) of up (OUT, R) and down (R, N).
     */
    static LowRankSvd ofGrams(double[] gu, double[] gd, int out, int rank, int cols, double alphaFactor, Linalg linalg) {
        double[] rd = linalg.choleskyUpper(gd, rank);          // (R, R), Rdᵀ Rd = Gd
        double[] p = linalg.sandwich(rd, gu, rank);            // (R, R) = Rd Gu Rdᵀ
        SymmetricEigen.Result eig = linalg.eigen(p, rank);
        int m = Math.min(Math.min(out, cols), rank);
        float[] s = new float[m];
        double[] sRaw = new double[m];
        float alphaF = (float) alphaFactor; // torch multiplies the fp32 tensor by the scalar in fp32
        for (int i = 0; i < m; i++) {
            sRaw[i] = Math.sqrt(Math.max(eig.values()[i], 0));
            s[i] = (float) sRaw[i] * alphaF;
        }
        // A_i = Rdᵀ Vc_i (rows of A = Vc·Rd), B_i = Gu A_i
        double[][] ab = linalg.directions(eig.vectors(), m, rd, gu, rank);
        return new LowRankSvd(rank, out, cols, s, sRaw, ab[0], ab[1], linalg);
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
        float[] upNew = linalg.multiplyTransposed(up, out, rank, ku, d);     // (OUT, D)
        float[] dst = downInto != null && downInto.length >= d * cols ? downInto : new float[d * cols];
        float[] downNew = linalg.multiply(kd, d, rank, down, cols, dst);    // (D, N)
        return new float[][] {upNew, downNew};
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
        float[] u = linalg.multiplyByTransposed(ku, m, rank, up, out);      // (M, OUT)
        float[] v = linalg.multiply(kv, m, rank, down, cols, new float[m * cols]); // (M, N)
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
}
