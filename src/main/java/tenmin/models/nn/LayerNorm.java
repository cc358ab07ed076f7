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

    /**
     * Normalises x with gamma and beta cast to x's dtype where they differ (fp8 weights, or 16-bit ones under fp32
     * activations; no copy when equal). fp8 values are exact in every compute dtype, so fp8 weights give the values
     * PyTorch's autocast gives them (it casts them to fp32 for {@code layer_norm}).
     */
    public Tensor forward(Functional f, Tensor x) {
        Tensor g = f.cast(gamma, x.dtype());
        Tensor b = f.cast(beta, x.dtype());
        Tensor y = f.layerNorm(x, g, b, eps);
        f.release(g == gamma ? null : g, b == beta ? null : b); // only casts made here
        return y;
    }
}
