package tenmin.models.nn;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/** Layer normalisation over the last dimension with affine gamma/beta (C): x (.., C) → same shape. */
public final class LayerNorm {
    private final double eps;
    private final Tensor gamma; // (C)
    private final Tensor beta;  // (C)

    public LayerNorm(Params p, int channels, double eps) {
        this.eps = eps;
        this.gamma = p.get("weight", Shape.of(channels));
        this.beta = p.get("bias", Shape.of(channels));
    }

    public Tensor forward(Functional f, Tensor x) {
        return f.layerNorm(x, f.cast(gamma, x.dtype()), f.cast(beta, x.dtype()), eps);
    }
}
