package tenmin.models.nn;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/** Group normalisation with affine gamma/beta (C): x (N, C, ..) → same shape. */
public final class GroupNorm {
    private final int groups;
    private final double eps;
    private final Tensor gamma; // (C)
    private final Tensor beta;  // (C)

    public GroupNorm(Params p, int groups, int channels, double eps) {
        this.groups = groups;
        this.eps = eps;
        this.gamma = p.get("weight", Shape.of(channels));
        this.beta = p.get("bias", Shape.of(channels));
    }

    public Tensor forward(Functional f, Tensor x) {
        return f.groupNorm(x, gamma, beta, groups, eps);
    }
}
