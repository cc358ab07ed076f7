package tenmin.engine.autograd;

import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Tensor;

/**
 * Scaled dot-product attention {@code O = softmax(q kᵀ · scale [+ mask]) v}: q (N, h, Tq, D),
 * k (N, h, Tk, D), v (N, h, Tk, Dv) → O (N, h, Tq, Dv).
 * Saves: q, k, v, the output and its row log-sum-exp (N, h, Tq), causal, scale.
 */
final class AttentionOp extends Op {
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final AttentionResult saved;
    private final boolean causal;
    private final double scale;

    private AttentionOp(Tensor q, Tensor k, Tensor v, AttentionResult saved, boolean causal, double scale) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.saved = saved;
        this.causal = causal;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        AttentionResult r = f.backend().attention(f.scope(), q, k, v, causal, scale);
        if (f.records(q, k, v)) {
            f.record(new AttentionOp(q, k, v, r, causal, scale), r.out());
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
        return "attention";
    }

    // With S = q kᵀ · scale (masked), P = exp(S - lse), O = P v:
    //   dv = Pᵀ dO;  dP = dO vᵀ;  dS = P ∘ (dP - rowsum(dO ∘ O));  dq = dS k · scale;  dk = dSᵀ q · scale.
    // PyTorch: aten::_scaled_dot_product_flash_attention_backward (FlashAttention-2, Dao 2023, Alg. 2).
    @Override
    void backward(Backprop bp) {
        AttentionGrads g = bp.backend().attentionBackward(bp.scratch(), bp.grad(0), q, k, v, saved, causal, scale);
        bp.accumulate(q, g.dq());
        bp.accumulate(k, g.dk());
        bp.accumulate(v, g.dv());
    }
}
