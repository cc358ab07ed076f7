package tenmin.models.nn;

import tenmin.engine.api.DType;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.autograd.KeptCast;

/**
 * Group normalisation with affine gamma/beta (C): x (N, C, ..) → same shape.
 *
 * <p>With {@code fp32} set it behaves like sgm's {@code GroupNorm32} (and like any group norm under
 * PyTorch's bf16 autocast, whose fp32 list holds {@code group_norm}): a bf16/fp16 input is widened to
 * fp32, normalised with fp32 gamma/beta, and the result is cast back to the input's dtype. For fp32
 * inputs both modes are the same. Without a gradient (sampling, the fp32 VAE) that is
 * {@code Backend#groupNormInference32}.
 */
public final class GroupNorm {
    private final int groups;
    private final double eps;
    private final boolean fp32;
    private final Tensor gamma; // (C)
    private final Tensor beta;  // (C)
    /** fp32 copies of gamma and beta for the fp32 mode, made at the first call (the weights are frozen). */
    private final KeptCast gamma32 = new KeptCast();
    private final KeptCast beta32 = new KeptCast();

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
        if ((fp32 || x.dtype() == DType.F32) && f.allowsInferenceKernels()) {
            // sampling and the fp32 VAE (latent caching, decoding): the backend's fp32 group norm for inference, which
            // on CUDA spreads each group's statistics over the whole card and writes no wide result
            Tensor g32 = widened(f, gamma, gamma32);
            Tensor b32 = widened(f, beta, beta32);
            Tensor out = f.backend().groupNormInference32(f.scope(), x, g32, b32, groups, eps);
            f.release(g32, b32);
            return out;
        }
        if (fp32 && x.dtype() != DType.F32) {
            Tensor g32 = widened(f, gamma, gamma32);
            Tensor b32 = widened(f, beta, beta32);
            Tensor x32 = f.cast(x, DType.F32);
            Tensor y = f.groupNorm(x32, g32, b32, groups, eps);
            Tensor out = f.cast(y, x.dtype());
            f.release(x32, g32, b32, y);   // the backward keeps x32 (and the statistics) until it has run
            return out;
        }
        Tensor g = f.cast(gamma, x.dtype());
        Tensor b = f.cast(beta, x.dtype());
        Tensor y = f.groupNorm(x, g, b, groups, eps);
        f.release(g, b);
        return y;
    }

    /**
     * {@code p} in fp32: for a frozen 16-bit weight a copy made once and kept beside it (two casts fewer per call: the
     * SDXL U-Net has 46 fp32 group norms), else a cast per call (a trained weight's gradient flows through it).
     */
    private Tensor widened(Functional f, Tensor p, KeptCast kept) {
        return p.requiresGrad() ? f.cast(p, DType.F32) : kept.of(f, p, DType.F32);
    }
}
