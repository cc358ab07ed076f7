package tenmin.lora;

import java.util.function.Supplier;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.autograd.KeptCast;
import tenmin.engine.autograd.Randomness;
import tenmin.models.nn.Adapter;
import tenmin.models.nn.AdaptableLayer;

/**
 * One LyCORIS LoCon module in the bypass form (trainer-spec §8.5):
 * {@code y = layer(x) + multiplier · scalar · (alpha / rank) · up(down(x))} (the scalar is 1 unless max-norm
 * regularisation scaled the module).
 *
 * <p>Linear: down (r, in), up (out, r). Convolution k×k: down (r, in, k, k) with the layer's stride and
 * padding, up (out, r, 1, 1). The parameters stay in their own dtype (fp32 for training) and are cast to
 * the activation dtype inside the branch, so matmuls run in the activation precision while gradients
 * reach the fp32 parameters through the cast. LyCORIS's dropouts ({@link LoConDropout}) apply in a training forward
 * (one that carries {@code Functional#randomness}).
 */
public final class LoConModule implements Adapter {
    private final String name;
    private final AdaptableLayer layer;
    private final Tensor down; // (r, in) or (r, in, k, k)
    private final Tensor up;   // (out, r) or (out, r, 1, 1)
    private final double alpha;
    private final int rank;
    private double multiplier = 1.0;
    /**
     * LyCORIS's {@code scalar} (a buffer of 1.0 without {@code use_scalar}): max-norm regularisation
     * ({@code --scale_weight_norms}) multiplies it down; the branch and the saved {@code lora_up} carry it.
     */
    private double scalar = 1.0;
    /** Dropout while training (a forward with randomness); none by default. */
    private LoConDropout dropout = LoConDropout.NONE;
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
        return branch(f, x, drawing(f));
    }

    /**
     * The branch, {@code multiplier · (alpha / rank) · up(down(x))}; with {@code draws} (a training forward with
     * dropout), down's rank channels masked ({@link LoConDropout#rank}) and the output dropped out
     * ({@link LoConDropout#network}), drawn in that order as LyCORIS does.
     */
    private Tensor branch(Functional f, Tensor x, Randomness draws) {
        Tensor d = cast(f, downCast, down, x.dtype());
        Tensor u = cast(f, upCast, up, x.dtype());
        Tensor dm = rankMasked(f, d, draws);
        Tensor h;
        Tensor hidden;
        if (layer.kind() == AdaptableLayer.Kind.LINEAR) {
            hidden = f.linear(x, dm, null);                              // (.., in) → (.., r)
            h = f.linear(hidden, u, null);                               // (.., r) → (.., out)
        } else {
            hidden = f.conv2d(x, dm, null, layer.stride(), layer.padding()); // (N, r, Ho, Wo)
            h = f.conv2d(hidden, u, null, 1, 0);                               // (N, out, Ho, Wo)
        }
        Tensor out = f.scale(h, multiplier * scalar * alpha / rank);
        f.release(hidden, h, dm == d ? null : dm, d, u);
        if (draws != null && dropout.network() > 0) {
            double p = dropout.network();
            Tensor mask = f.keepMask(out.shape(), out.dtype(), p, p >= 1 ? 0 : 1 / (1 - p));
            Tensor dropped = f.mul(out, mask);
            f.release(out, mask);
            out = dropped;
        }
        return out;
    }

    /** {@code y + branch(x)}, the bypass form (the layer's output {@code y} is the caller's). */
    private Tensor branchAdded(Functional f, Tensor y, Tensor x, Randomness draws) {
        Tensor b = branch(f, x, draws);
        Tensor out = f.add(y, b);
        f.release(b);
        return out;
    }

    /** {@code d} (r, ..) with its rank channels masked ({@link LoConDropout#rank}), or {@code d} itself. */
    private Tensor rankMasked(Functional f, Tensor d, Randomness draws) {
        if (draws == null || dropout.rank() <= 0) {
            return d;
        }
        int[] dims = new int[d.shape().rank()];
        java.util.Arrays.fill(dims, 1);
        dims[0] = rank;
        Tensor mask = f.keepMask(Shape.of(dims), d.dtype(), dropout.rank(), 1);       // (r, 1) or (r, 1, 1, 1)
        Tensor masked = f.mul(d, mask);
        f.release(mask);
        return masked;
    }

    /** The forward's draws when this call drops out (a training forward, some dropout on), else null. */
    private Randomness drawing(Functional f) {
        return dropout.any() ? f.randomness() : null;
    }

    /** True when {@code draws} skip this call ({@link LoConDropout#module}); draws the coin when module dropout is on. */
    private boolean skipped(Randomness draws) {
        return draws != null && dropout.module() > 0 && draws.nextUniform() < dropout.module();
    }

    /**
     * The layer and the branch as one {@code Functional#loraLinear} (merged into the weight where that pays); with
     * dropout, the layer alone when the module is dropped, the bypass form with the branch's output dropped out.
     */
    @Override
    public Tensor addToLinear(Functional f, Tensor x, Tensor weight, Tensor bias) {
        return layerAndBranch(f, x, AdaptableLayer.Kind.LINEAR, () -> f.linear(x, weight, bias),
                (d, u, s) -> f.loraLinear(x, weight, bias, d, u, s));
    }

    /** The layer, the branch and the GEGLU after them as one {@code Functional#loraLinearGeglu}; dropout as above. */
    @Override
    public Tensor addToLinearGeglu(Functional f, Tensor x, Tensor weight, Tensor bias) {
        Randomness draws = drawing(f);
        boolean dropped = skipped(draws);
        if (dropped || (draws != null && dropout.network() > 0)) {
            Tensor y = f.linear(x, weight, bias);
            Tensor sum = dropped ? y : branchAdded(f, y, x, draws);
            Tensor out = f.geglu(sum);
            f.release(y, sum == y ? null : sum);
            return out;
        }
        return withCasts(f, x, AdaptableLayer.Kind.LINEAR, draws,
                (d, u, s) -> f.loraLinearGeglu(x, weight, bias, d, u, s));
    }

    /** The layer and the branch as one {@code Functional#loraConv2d} (merged into the weight where that pays); dropout as above. */
    @Override
    public Tensor addToConv2d(Functional f, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        return layerAndBranch(f, x, AdaptableLayer.Kind.CONV, () -> f.conv2d(x, weight, bias, stride, padding),
                (d, u, s) -> f.loraConv2d(x, weight, bias, d, u, s, stride, padding));
    }

    /**
     * The layer with this module on it ({@code layerAlone}: the layer's output without it): the layer alone when
     * module dropout drops the call; the bypass form when the branch's output is dropped out; else {@code fused} on
     * the cast down and up (rank channels masked with rank dropout). Draws in that order.
     */
    private Tensor layerAndBranch(Functional f, Tensor x, AdaptableLayer.Kind kind, Supplier<Tensor> layerAlone,
                                  Fused fused) {
        Randomness draws = drawing(f);
        if (skipped(draws)) {
            return layerAlone.get();
        }
        if (draws != null && dropout.network() > 0) {
            Tensor y = layerAlone.get();
            Tensor out = branchAdded(f, y, x, draws);
            f.release(y);
            return out;
        }
        return withCasts(f, x, kind, draws, fused);
    }

    /** A fused form of the layer and its branch, given down and up in x's dtype and the scale. */
    @FunctionalInterface
    private interface Fused {
        Tensor apply(Tensor down, Tensor up, double scale);
    }

    /**
     * {@code fused} on this module's down (rank channels masked by {@code draws} when rank dropout is on) and up, cast
     * to x's dtype (released after it), for a layer of {@code kind}.
     */
    private Tensor withCasts(Functional f, Tensor x, AdaptableLayer.Kind kind, Randomness draws, Fused fused) {
        if (layer.kind() != kind) {
            throw new IllegalStateException(name + ": a " + layer.kind() + " layer called the " + kind + " form");
        }
        Tensor d = cast(f, downCast, down, x.dtype());
        Tensor u = cast(f, upCast, up, x.dtype());
        Tensor dm = rankMasked(f, d, draws);
        Tensor out = fused.apply(dm, u, multiplier * scalar * alpha / rank);
        f.release(dm == d ? null : dm, d, u);
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
     * {@code acc + strength · scalar · (alpha/r) · up·down}, in fp32, shaped like {@code acc} (the layer's weight, (out, in)
     * or (out, in, kh, kw)): the module's delta added into a merged weight, in {@code s}.
     */
    public Tensor addDelta(Scope s, Tensor acc, double strength) {
        tenmin.engine.api.Backend be = s.backend();
        int out = acc.dim(0);
        Tensor u = be.reshape(s, be.cast(s, up, DType.F32), Shape.of(out, rank));
        Tensor d = be.reshape(s, be.cast(s, down, DType.F32), Shape.of(rank, (int) (acc.numel() / out)));
        Tensor delta = be.reshape(s, be.matmul(s, u, d, false, false), acc.shape());
        return be.add(s, acc, delta, strength * scalar * scale());
    }

    /** LyCORIS's scalar (1 unless max-norm regularisation scaled the module down). */
    public double scalar() {
        return scalar;
    }

    /** Sets {@link #scalar()} (max-norm regularisation; a resumed run's saved value). */
    public void setScalar(double scalar) {
        if (!(scalar > 0) || Double.isInfinite(scalar)) {
            throw new IllegalArgumentException(name + ": scalar " + scalar);
        }
        this.scalar = scalar;
    }

    /** The module's dropout while training ({@link LoConDropout#NONE}: none). */
    public void setDropout(LoConDropout dropout) {
        this.dropout = java.util.Objects.requireNonNull(dropout);
    }

    public LoConDropout dropout() {
        return dropout;
    }

    /** The strength the branch is applied with (1 in training; a LoRA weight when sampling). */
    public void setMultiplier(double multiplier) {
        this.multiplier = multiplier;
    }
}
