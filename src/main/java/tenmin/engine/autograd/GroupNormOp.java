package tenmin.engine.autograd;

import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Tensor;

/**
 * Group normalisation {@code y = (x - μ_g) · rstd_g · γ + β} of x (N, C, ..) over groups of channels.
 * Saves: x, the forward's mean and rstd (N, groups), gamma, whether there is a beta.
 */
final class GroupNormOp extends Op {
    private final Tensor x;
    private final Tensor gamma;
    private final Tensor beta;
    private final NormResult saved;
    private final int groups;

    private GroupNormOp(Tensor x, Tensor gamma, Tensor beta, NormResult saved, int groups) {
        this.x = x;
        this.gamma = gamma;
        this.beta = beta;
        this.saved = saved;
        this.groups = groups;
    }

    static Tensor forward(Functional f, Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        NormResult r = f.backend().groupNorm(f.scope(), x, gamma, beta, groups, eps);
        if (f.records(x, gamma, beta)) {
            f.record(new GroupNormOp(x, gamma, beta, r, groups), r.y());
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
        return "groupNorm";
    }

    // With x̂ = (x - μ) rstd over the M elements of a group and g = dy · γ:
    //   dx = rstd · (g - mean(g) - x̂ · mean(g · x̂));  dγ = Σ dy · x̂;  dβ = Σ dy  (sums over N and space).
    // PyTorch: aten::native_group_norm_backward.
    @Override
    void backward(Backprop bp) {
        OutputMask mask = bp.mask(x, gamma, beta);
        LayerGrads g = bp.backend().groupNormBackward(bp.scratch(), bp.grad(0), x, saved, gamma, groups, mask);
        bp.accumulate(g, x, gamma, beta);
    }
}
