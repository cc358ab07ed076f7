package tenmin.engine.autograd;

import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Tensor;

/**
 * Layer normalisation {@code y = (x - μ) · rstd · γ + β} over the last dimension of x (.., C).
 * Saves: x, the forward's mean and rstd (.., 1), gamma, whether there is a beta.
 */
final class LayerNormOp extends Op {
    private final Tensor x;
    private final Tensor gamma;
    private final Tensor beta;
    private final NormResult saved;

    private LayerNormOp(Tensor x, Tensor gamma, Tensor beta, NormResult saved) {
        this.x = x;
        this.gamma = gamma;
        this.beta = beta;
        this.saved = saved;
    }

    static Tensor forward(Functional f, Tensor x, Tensor gamma, Tensor beta, double eps) {
        NormResult r = f.backend().layerNorm(f.scope(), x, gamma, beta, eps);
        if (f.records(x, gamma, beta)) {
            f.record(new LayerNormOp(x, gamma, beta, r), r.y());
        } else {
            r.mean().close();
            r.rstd().close();
        }
        return r.y();
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, gamma, saved.mean(), saved.rstd()};
    }

    @Override
    String name() {
        return "layerNorm";
    }

    // Per row, with x̂ = (x - μ) rstd and g = dy · γ:
    //   dx = rstd · (g - mean(g) - x̂ · mean(g · x̂));  dγ = Σ_rows dy · x̂;  dβ = Σ_rows dy.
    // PyTorch: aten::native_layer_norm_backward.
    @Override
    void backward(Backprop bp) {
        OutputMask mask = bp.mask(x, gamma, beta);
        LayerGrads g = bp.backend().layerNormBackward(bp.scratch(), bp.grad(0), x, saved, gamma, mask);
        bp.accumulate(g, x, gamma, beta);
    }
}
