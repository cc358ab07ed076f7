package tenmin.engine.backend.cpu;

/**
 * Scaled dot-product attention, block-wise so memory stays bounded: a block of BQ query rows at a
 * time computes its scores against all keys (BQ × Tk floats per thread), never the full Tq × Tk
 * matrix.
 *
 * <p>Legend: B = N·heads independent problems, Tq queries, Tk keys, D head dim, Dv value dim;
 * S = q kᵀ · scale (masked), lse = log Σ_j exp(S_ij), P = exp(S - lse), O = P v.
 * Backward (FlashAttention-2, Dao 2023, Algorithm 2) recomputes P from lse:
 * dv += Pᵀ dO, dP = dO vᵀ, dS = P ∘ (dP - rowsum(dO ∘ O)) · scale, dq = dS k, dk += dSᵀ q.
 */
final class Attention {
    /** Query rows per block. */
    private static final int BQ = 64;
    /** Workspace slots (Gemm uses 0..2). */
    private static final int SLOT_S = 3;
    private static final int SLOT_DP = 4;

    /** Sizes of one attention call. */
    record Dims(int b, int tq, int tk, int d, int dv) {
    }

    private Attention() {
    }

    static void forward(Parallel par, Dims m, float[] q, float[] k, float[] v, boolean causal, float scale,
                        float[] out, float[] lse) {
        int blocks = (m.tq() + BQ - 1) / BQ;
        par.forRange(m.b() * blocks, 1, (u0, u1) -> {
            float[] s = par.workspace().floats(SLOT_S, BQ * m.tk());
            for (int u = u0; u < u1; u++) {
                int b = u / blocks;
                int i0 = (u % blocks) * BQ;
                int bq = Math.min(BQ, m.tq() - i0);
                scores(par, m, q, k, b, i0, bq, causal, scale, s);
                for (int r = 0; r < bq; r++) {
                    int row = r * m.tk();
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < m.tk(); j++) {
                        max = Math.max(max, s[row + j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < m.tk(); j++) {
                        sum += Math.exp(s[row + j] - max);
                    }
                    double l = max + Math.log(sum);
                    lse[b * m.tq() + i0 + r] = (float) l;
                    for (int j = 0; j < m.tk(); j++) {
                        s[row + j] = (float) Math.exp(s[row + j] - l);
                    }
                }
                // O_blk (bq, Dv) = P (bq, Tk) · v_b (Tk, Dv)
                Gemm.multiply(par, s, 0, false, v, b * m.tk() * m.dv(), false,
                        out, (b * m.tq() + i0) * m.dv(), bq, m.dv(), m.tk(), false);
            }
        });
    }

    static void backward(Parallel par, Dims m, float[] dOut, float[] q, float[] k, float[] v, float[] out, float[] lse,
                         boolean causal, float scale, float[] dq, float[] dk, float[] dv) {
        par.forRange(m.b(), 1, (b0, b1) -> {
            float[] p = par.workspace().floats(SLOT_S, BQ * m.tk());
            float[] dp = par.workspace().floats(SLOT_DP, BQ * m.tk());
            for (int b = b0; b < b1; b++) {
                int kOff = b * m.tk() * m.d();
                int vOff = b * m.tk() * m.dv();
                for (int i0 = 0; i0 < m.tq(); i0 += BQ) {
                    int bq = Math.min(BQ, m.tq() - i0);
                    int oOff = (b * m.tq() + i0) * m.dv();
                    int qOff = (b * m.tq() + i0) * m.d();
                    scores(par, m, q, k, b, i0, bq, causal, scale, p);
                    for (int r = 0; r < bq; r++) {
                        float l = lse[b * m.tq() + i0 + r];
                        int row = r * m.tk();
                        for (int j = 0; j < m.tk(); j++) {
                            p[row + j] = (float) Math.exp(p[row + j] - l);
                        }
                    }
                    // dv_b (Tk, Dv) += Pᵀ (Tk, bq) · dO_blk (bq, Dv)
                    Gemm.multiply(par, p, 0, true, dOut, oOff, false, dv, vOff, m.tk(), m.dv(), bq, true);
                    // dP (bq, Tk) = dO_blk (bq, Dv) · v_bᵀ (Dv, Tk)
                    Gemm.multiply(par, dOut, oOff, false, v, vOff, true, dp, 0, bq, m.tk(), m.dv(), false);
                    for (int r = 0; r < bq; r++) {
                        double di = 0;
                        for (int c = 0; c < m.dv(); c++) {
                            di += (double) dOut[oOff + r * m.dv() + c] * out[oOff + r * m.dv() + c];
                        }
                        int row = r * m.tk();
                        for (int j = 0; j < m.tk(); j++) {
                            dp[row + j] = (float) (p[row + j] * (dp[row + j] - di) * scale);
                        }
                    }
                    // dq_blk (bq, D) = dS (bq, Tk) · k_b (Tk, D);  dk_b (Tk, D) += dSᵀ (Tk, bq) · q_blk (bq, D)
                    Gemm.multiply(par, dp, 0, false, k, kOff, false, dq, qOff, bq, m.d(), m.tk(), false);
                    Gemm.multiply(par, dp, 0, true, q, qOff, false, dk, kOff, m.tk(), m.d(), bq, true);
                }
            }
        });
    }

    /** s (bq, Tk) = q_blk · k_bᵀ · scale, with -inf above the diagonal when causal. */
    private static void scores(Parallel par, Dims m, float[] q, float[] k, int b, int i0, int bq, boolean causal,
                               float scale, float[] s) {
        Gemm.multiply(par, q, (b * m.tq() + i0) * m.d(), false, k, b * m.tk() * m.d(), true, s, 0, bq, m.tk(), m.d(), false);
        for (int r = 0; r < bq; r++) {
            int row = r * m.tk();
            int i = i0 + r;
            for (int j = 0; j < m.tk(); j++) {
                s[row + j] = causal && j > i ? Float.NEGATIVE_INFINITY : s[row + j] * scale;
            }
        }
    }
}
