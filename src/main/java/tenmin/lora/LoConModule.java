package tenmin.lora;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.autograd.KeptCast;
import tenmin.models.nn.Adapter;
import tenmin.models.nn.AdaptableLayer;

/**
 * One LyCORIS LoCon module in the bypass form (trainer-spec §8.5):
 * {@code y = layer(x) + multiplier · (alpha / rank) · up(down(x))}.
 *
 * <p>Linear: down (r, in), up (out, r). Convolution k×k: down (r, in, k, k) with the layer's stride and
 * padding, up (out, r, 1, 1). The parameters stay in their own dtype (fp32 for training) and are cast to
 * the activation dtype inside the branch, so matmuls run in the activation precision while gradients
 * reach the fp32 parameters through the cast.
 */
public final class LoConModule implements Adapter {
    private final String name;
    private final AdaptableLayer layer;
    private final Tensor down; // (r, in) or (r, in, k, k)
    private final Tensor up;   // (out, r) or (out, r, 1, 1)
    private final double alpha;
    private final int rank;
    private double multiplier = 1.0;
    /** Whether the activation-dtype copies of down and up are kept between calls (see {@link #reuseCasts}). */
    private boolean reuseCasts;
    /** The kept copies of down and up. */
    private final KeptCast downCast = new KeptCast();
    private final KeptCast upCast = new KeptCast();

    public LoConModule(String name, AdaptableLayer layer, Tensor down, Tensor up, double alpha) {
        this.name = name;
        this.layer = layer;
        this.down = down;
        this.up = up;
        this.alpha = alpha;
        this.rank = down.dim(0);
        if (up.dim(1) != rank) {
            throw new IllegalArgumentException(name + ": up " + up.describe() + " does not match down " + down.describe());
        }
    }

    @Override
    public Tensor apply(Functional f, Tensor x) {
        Tensor d = cast(f, downCast, down, x.dtype());
        Tensor u = cast(f, upCast, up, x.dtype());
        Tensor h;
        if (layer.kind() == AdaptableLayer.Kind.LINEAR) {
            h = f.linear(f.linear(x, d, null), u, null);          // (.., in) → (.., r) → (.., out)
        } else {
            h = f.conv2d(x, d, null, layer.stride(), layer.padding()); // (N, r, Ho, Wo)
            h = f.conv2d(h, u, null, 1, 0);                             // (N, out, Ho, Wo)
        }
        return f.scale(h, multiplier * alpha / rank);
    }

    /** The layer and the branch as one {@code Functional#loraLinear} (merged into the weight where that pays). */
    @Override
    public Tensor addToLinear(Functional f, Tensor x, Tensor weight, Tensor bias) {
        return withCasts(f, x, AdaptableLayer.Kind.LINEAR, (d, u, s) -> f.loraLinear(x, weight, bias, d, u, s));
    }

    /** The layer, the branch and the GEGLU after them as one {@code Functional#loraLinearGeglu}. */
    @Override
    public Tensor addToLinearGeglu(Functional f, Tensor x, Tensor weight, Tensor bias) {
        return withCasts(f, x, AdaptableLayer.Kind.LINEAR, (d, u, s) -> f.loraLinearGeglu(x, weight, bias, d, u, s));
    }

    /** The layer and the branch as one {@code Functional#loraConv2d} (merged into the weight where that pays). */
    @Override
    public Tensor addToConv2d(Functional f, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        return withCasts(f, x, AdaptableLayer.Kind.CONV,
                (d, u, s) -> f.loraConv2d(x, weight, bias, d, u, s, stride, padding));
    }

    /** A fused form of the layer and its branch, given down and up in x's dtype and the scale. */
    @FunctionalInterface
    private interface Fused {
        Tensor apply(Tensor down, Tensor up, double scale);
    }

    /** {@code fused} on this module's down and up cast to x's dtype (released after it), for a layer of {@code kind}. */
    private Tensor withCasts(Functional f, Tensor x, AdaptableLayer.Kind kind, Fused fused) {
        if (layer.kind() != kind) {
            throw new IllegalStateException(name + ": a " + layer.kind() + " layer called the " + kind + " form");
        }
        Tensor d = cast(f, downCast, down, x.dtype());
        Tensor u = cast(f, upCast, up, x.dtype());
        Tensor out = fused.apply(d, u, multiplier * alpha / rank);
        f.release(d, u);
        return out;
    }

    /** {@code p} in {@code dtype}: with {@link #reuseCasts}, the copy kept from an earlier call (made when missing). */
    private Tensor cast(Functional f, KeptCast kept, Tensor p, DType dtype) {
        return reuseCasts ? kept.of(f, p, dtype) : f.cast(p, dtype);
    }

    /**
     * Keeps the activation-dtype copies of down and up between calls (on) or makes them per call (off, the default):
     * a trainer turns it on for the micro-batches of an optimizer window, where the parameters do not change, and
     * calls {@link #dropCasts} whenever it writes them. The recipe's 2,104 parameters were cast twice per
     * micro-batch with full checkpointing (forward and recomputation): 4,200 of its 38,600 ops.
     */
    public void reuseCasts(boolean on) {
        reuseCasts = on;
        if (!on) {
            dropCasts();
        }
    }

    /** Frees the kept copies (the parameters changed); the next call makes new ones. */
    public void dropCasts() {
        downCast.drop();
        upCast.drop();
    }

    /** The kohya/LyCORIS module name, e.g. {@code lora_unet_input_blocks_1_0_in_layers_2}. */
    public String name() {
        return name;
    }

    public AdaptableLayer layer() {
        return layer;
    }

    public Tensor down() {
        return down;
    }

    public Tensor up() {
        return up;
    }

    public double alpha() {
        return alpha;
    }

    public int rank() {
        return rank;
    }

    /** alpha / rank. */
    public double scale() {
        return alpha / rank;
    }

    public double multiplier() {
        return multiplier;
    }

    /**
     * {@code acc + strength · (alpha/r) · up·down}, in fp32, shaped like {@code acc} (the layer's weight, (out, in)
     * or (out, in, kh, kw)): the module's delta added into a merged weight, in {@code s}.
     */
    public Tensor addDelta(Scope s, Tensor acc, double strength) {
        tenmin.engine.api.Backend be = s.backend();
        int out = acc.dim(0);
        Tensor u = be.reshape(s, be.cast(s, up, DType.F32), Shape.of(out, rank));
        Tensor d = be.reshape(s, be.cast(s, down, DType.F32), Shape.of(rank, (int) (acc.numel() / out)));
        Tensor delta = be.reshape(s, be.matmul(s, u, d, false, false), acc.shape());
        return be.add(s, acc, delta, strength * scale());
    }

    /** The strength the branch is applied with (1 in training; a LoRA weight when sampling). */
    public void setMultiplier(double multiplier) {
        this.multiplier = multiplier;
    }
}
