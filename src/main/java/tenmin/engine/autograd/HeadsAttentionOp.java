package tenmin.engine.autograd;

import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Tensor;

/**
 * {@link AttentionOp} on tensors whose heads are not split: q (N, Tq, h·D), k (N, Tk, h·D), v (N, Tk, h·Dv) →
 * O (N, Tq, h·Dv), {@code heads} heads of width D. The backend keeps the heads as views where its kernels allow
 * ({@code Backend#attentionHeads}). Saves: q, k, v, the output and its log-sum-exp (N, h, Tq), causal, scale.
 */
final class HeadsAttentionOp extends Op {
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final int heads;
    private final AttentionResult saved;
    private final boolean causal;
    private final double scale;

    private HeadsAttentionOp(Tensor q, Tensor k, Tensor v, int heads, AttentionResult saved, boolean causal,
                             double scale) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.heads = heads;
        this.saved = saved;
        this.causal = causal;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor q, Tensor k, Tensor v, int heads, boolean causal, double scale) {
        AttentionResult r = f.backend().attentionHeads(f.scope(), q, k, v, heads, causal, scale);
        if (f.records(q, k, v)) {
            f.record(new HeadsAttentionOp(q, k, v, heads, r, causal, scale), r.out());
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
        return "attentionHeads";
    }

    // The gradients of AttentionOp per head; the backend splits and merges the heads as in the forward.
    @Override
    void backward(Backprop bp) {
        AttentionGrads g = bp.backend().attentionHeadsBackward(bp.scratch(), bp.grad(0), q, k, v, heads, saved, causal,
                scale);
        bp.accumulate(q, g.dq());
        bp.accumulate(k, g.dk());
        bp.accumulate(v, g.dv());
    }
}
