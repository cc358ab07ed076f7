package tenmin.engine.autograd;

import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Tensor;

/**
 * Scaled dot-product attention {@code O = softmax(q kᵀ · scale [+ mask]) v}: q (N, h, Tq, D),
 * k (N, h, Tk, D), v (N, h, Tk, Dv) → O (N, h, Tq, Dv); or, with {@code heads} h given, on unsplit heads:
 * q (N, Tq, h·D), k (N, Tk, h·D), v (N, Tk, h·Dv) → O (N, Tq, h·Dv) ({@code Backend#attentionHeads}, which keeps
 * the heads as views where the backend's kernels allow).
 * Saves: q, k, v, the output and its row log-sum-exp (N, h, Tq), causal, scale.
 */
final class AttentionOp extends Op {
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    /** 0: q, k, v have their heads split; else the number of heads in their last dimension. */
    private final int heads;
    private final AttentionResult saved;
    private final boolean causal;
    private final double scale;

    private AttentionOp(Tensor q, Tensor k, Tensor v, int heads, AttentionResult saved, boolean causal, double scale) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.heads = heads;
        this.saved = saved;
        this.causal = causal;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        return forward(f, q, k, v, 0, causal, scale);
    }

    static Tensor forward(Functional f, Tensor q, Tensor k, Tensor v, int heads, boolean causal, double scale) {
        AttentionResult r = heads == 0 ? f.backend().attention(f.scope(), q, k, v, causal, scale)
                : f.backend().attentionHeads(f.scope(), q, k, v, heads, causal, scale);
        if (f.records(q, k, v)) {
            f.record(new AttentionOp(q, k, v, heads, r, causal, scale), r.out());
        } else {
            r.logSumExp().close();
        }
        return r.out();
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {q, k, v, saved.out(), saved.logSumExp()};
    }

    @Override
    String name() {
        return heads == 0 ? "attention" : "attentionHeads";
    }

    // With S = q kᵀ · scale (masked), P = exp(S - lse), O = P v:
    //   dv = Pᵀ dO;  dP = dO vᵀ;  dS = P ∘ (dP - rowsum(dO ∘ O));  dq = dS k · scale;  dk = dSᵀ q · scale.
    // PyTorch: aten::_scaled_dot_product_flash_attention_backward (FlashAttention-2, Dao 2023, Alg. 2).
    @Override
    void backward(Backprop bp) {
        AttentionGrads g = heads == 0
                ? bp.backend().attentionBackward(bp.scratch(), bp.grad(0), q, k, v, saved, causal, scale)
                : bp.backend().attentionHeadsBackward(bp.scratch(), bp.grad(0), q, k, v, heads, saved, causal, scale);
        bp.accumulate(q, g.dq());
        bp.accumulate(k, g.dk());
        bp.accumulate(v, g.dv());
    }
}
