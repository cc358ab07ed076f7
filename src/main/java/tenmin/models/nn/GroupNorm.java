package tenmin.models.nn;

import tenmin.engine.api.DType;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * Group normalisation with affine gamma/beta (C): x (N, C, ..) → same shape.
 *
 * <p>With {@code fp32} set it behaves like sgm's {@code GroupNorm32} (and like any group norm under
 * PyTorch's bf16 autocast, whose fp32 list holds {@code group_norm}): a bf16/fp16 input is widened to
 * fp32, normalised with fp32 gamma/beta, and the result is cast back to the input's dtype. For fp32
 * inputs both modes are the same.
 */
public final class GroupNorm {
    private final int groups;
    private final double eps;
    private final boolean fp32;
    private final Tensor gamma; // (C)
    private final Tensor beta;  // (C)

    public GroupNorm(Params p, int groups, int channels, double eps) {
        this(p, groups, channels, eps, false);
    }

    /** A group norm that computes in fp32 whatever the activation dtype when {@code fp32} is set. */
    public GroupNorm(Params p, int groups, int channels, double eps, boolean fp32) {
        this.groups = groups;
        this.eps = eps;
        this.fp32 = fp32;
        this.gamma = p.get("weight", Shape.of(channels));
        this.beta = p.get("bias", Shape.of(channels));
    }

    public Tensor forward(Functional f, Tensor x) {
        if (fp32 && x.dtype() != DType.F32) {
            Tensor y = f.groupNorm(f.cast(x, DType.F32), f.cast(gamma, DType.F32), f.cast(beta, DType.F32), groups, eps);
            return f.cast(y, x.dtype());
        }
        return f.groupNorm(x, f.cast(gamma, x.dtype()), f.cast(beta, x.dtype()), groups, eps);
    }
}
