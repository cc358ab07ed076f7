package tenmin.engine.autograd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import tenmin.core.Switch;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * The functional facade model code is written against, so a block reads like its equations:
 *
 * <pre>{@code
 * Tensor h = f.conv2d(f.silu(f.groupNorm(x, g1, b1, 32, 1e-5)), w1, c1, 1, 1);   // (N, C, H, W)
 * h = f.add(h, f.reshape(f.linear(f.silu(emb), we, be), n, c, 1, 1));           // + (N, C, 1, 1)
 * }</pre>
 *
 * <p>A {@code Functional} binds a {@link Scope} (where results go) and, when training, a tape that
 * records ops whose inputs carry gradient ({@link #training}); {@link #inference} records nothing and
 * saves no activations. Results of every call belong to {@link #scope()}. Gradients: only tensors
 * that {@link Tensor#requireGrad()} (and what depends on them) are tracked; {@link #backward} adds
 * leaf gradients into {@link Tensor#grad()} ({@code +=}, for gradient accumulation).
 *
 * <p>Shapes in comments use N batch, C channels, H/W spatial, T tokens, D head dim.
 */
public final class Functional {
    /** {@link #loraLinear}'s merged form: on unless the property or {@code TENMIN_LORA_MERGE} is 0. */
    public static final String MERGE_LORA_PROPERTY = "tenmin.loraMerge";
    private static final Switch MERGE_LORA = new Switch(MERGE_LORA_PROPERTY, "TENMIN_LORA_MERGE");
    /**
     * Tests: when {@code true}, training merges every LoRA layer, also where {@code MergedLoraOp#pays} says the
     * branch moves less (the toy models' layers are too small for merging to pay), so that their runs cover it.
     */
    public static final String MERGE_ALWAYS_PROPERTY = "tenmin.loraMergeAlways";
    /**
     * Merged convolutions' LoCon gradients projected from the layer's weight gradient where that takes fewer FLOPs:
     * on unless the property or {@code TENMIN_LORA_PROJECT} is 0; the property {@code always} projects every one.
     */
    public static final String PROJECT_LORA_PROPERTY = MergedLoraOp.PROJECT_PROPERTY;
    /** {@link #loraLinearGeglu}'s split form: on unless the property or {@code TENMIN_SPLIT_GEGLU} is 0. */
    public static final String SPLIT_GEGLU_PROPERTY = "tenmin.splitGeglu";
    private static final Switch SPLIT_GEGLU = new Switch(SPLIT_GEGLU_PROPERTY, "TENMIN_SPLIT_GEGLU");
    /** The tape's deferred parameter-gradient sums: on unless the property or {@code TENMIN_DEFER_GRADS} is 0. */
    public static final String DEFER_GRADS_PROPERTY = Tape.DEFER_PROPERTY;

    private final Scope scope;
    private final Tape tape;
    /**
     * Without a tape: the forward of a checkpointed block whose recomputation will be recorded, so its results must
     * be the recording path's own (no {@link #allowsInferenceKernels inference kernels}).
     */
    private final boolean replayed;
    /** The draws of a stochastic (training) forward, or null: deterministic. */
    private final Randomness random;

    private Functional(Scope scope, Tape tape, boolean replayed) {
        this(scope, tape, replayed, null);
    }

    private Functional(Scope scope, Tape tape, boolean replayed, Randomness random) {
        this.scope = scope;
        this.tape = tape;
        this.replayed = replayed;
        this.random = random;
    }

    /** Records a tape; results and activation gradients live in {@code scope} (the step scope). */
    public static Functional training(Scope scope) {
        return new Functional(scope, new Tape(scope), false);
    }

    /** No tape, no saved activations (inference, caching latents, sampling). */
    public static Functional inference(Scope scope) {
        return new Functional(scope, null, false);
    }

    /** Package use: a facade over {@code scope} recording on {@code tape} (checkpoint recompute). */
    static Functional recording(Scope scope, Tape tape) {
        return new Functional(scope, tape, false);
    }

    /**
     * Package use: no tape, for the first forward of a checkpointed block that a recording facade will recompute;
     * its results equal the recomputation's ({@link #allowsInferenceKernels} is false).
     */
    static Functional replayed(Scope scope) {
        return new Functional(scope, null, true);
    }

    /** The same scope without recording: for parts that need no gradient (frozen encoders). */
    public Functional noGrad() {
        return new Functional(scope, null, false, random);
    }

    /** The same tape with results in {@code other} (which must stay open until backward is done). */
    public Functional in(Scope other) {
        return new Functional(other, tape, replayed, random);
    }

    /**
     * This facade drawing from {@code draws} (null: none): a training forward whose stochastic layers (dropout) are
     * on. Checkpointed blocks replay their draws in the backward ({@link Randomness}).
     */
    public Functional withRandomness(Randomness draws) {
        return new Functional(scope, tape, replayed, draws);
    }

    /** The draws of a training forward, or null: the forward is deterministic (inference, sampling, evaluation). */
    public Randomness randomness() {
        return random;
    }

    /**
     * A dropout keep-mask drawn from {@link #randomness()} (which must be set): each of {@code shape}'s values is
     * {@code kept} where a uniform draw u in [0, 1) exceeds {@code p} (PyTorch's {@code rand > p}) and 0 elsewhere, in
     * {@code dtype}; a constant (no gradient). {@code p} ≥ 1 drops everything.
     */
    public Tensor keepMask(Shape shape, DType dtype, double p, double kept) {
        if (random == null) {
            throw new IllegalStateException("keepMask: this forward has no randomness");
        }
        Backend be = backend();
        try (Scope tmp = scope.child("keep mask")) {
            Tensor u = be.randUniform(tmp, shape, DType.F32, 0, 1, random.next());             // shape, [0, 1)
            // u > p ⇔ (u − p)·2^30 ≥ 1: u's values lie 2^-24 apart, so (u − p)·2^30 is ≤ 0 or ≥ 64; clamp to {0, 1}
            Tensor step = be.clamp(tmp, be.affine(tmp, u, 0x1.0p30, -p * 0x1.0p30), 0, 1);
            Tensor scaled = kept == 1 ? step : be.affine(tmp, step, kept, 0);
            return be.cast(scope, scaled, dtype);
        }
    }

    public Scope scope() {
        return scope;
    }

    public Backend backend() {
        return scope.backend();
    }

    /** True when this facade records a tape. */
    public boolean isRecording() {
        return tape != null;
    }

    /**
     * True for pure inference: no tape, and no recomputation that must reproduce these results bit for bit, so a
     * model may use a backend's inference-only formulation of an op ({@code Backend#groupNormInference32}), whose
     * values equal the recording path's up to the order of the sums.
     */
    public boolean allowsInferenceKernels() {
        return tape == null && !replayed;
    }

    /** True when this facade records and {@code t} carries gradient (it depends on a tensor that requires grad). */
    public boolean carriesGradient(Tensor t) {
        return records(t);
    }

    /** True when recording and one of {@code inputs} carries gradient (op classes call this). */
    boolean records(Tensor... inputs) {
        if (tape == null) {
            return false;
        }
        for (Tensor t : inputs) {
            if (tape.tracks(t)) {
                return true;
            }
        }
        return false;
    }

    /** Appends {@code op} producing {@code outputs} to the tape (op classes call this). */
    void record(Op op, Tensor... outputs) {
        tape.record(op, outputs);
    }

    Tape tape() {
        return tape;
    }

    // ---- matrix products and convolution -------------------------------------------------------

    /** {@code x · weightᵀ + bias}: x (.., K), weight (N, K), bias (N) or null → (.., N). torch {@code F.linear}. */
    public Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return LinearOp.forward(this, x, weight, bias);
    }

    /** {@code a · b}: (M, K)·(K, N) or batched (B, M, K)·(B, K, N) / (K, N). */
    public Tensor matmul(Tensor a, Tensor b) {
        return MatmulOp.forward(this, a, b, false, false);
    }

    /** {@code op(a) · op(b)}, transposing the last two dims of an operand when asked. */
    public Tensor matmul(Tensor a, Tensor b, boolean transA, boolean transB) {
        return MatmulOp.forward(this, a, b, transA, transB);
    }

    /**
     * 2-D convolution: x (N, C, H, W), weight (O, C, k, k), bias (O) or null, stride, zero padding →
     * (N, O, Ho, Wo). torch {@code F.conv2d}.
     */
    public Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        return Conv2dOp.forward(this, x, weight, bias, stride, padding);
    }

    // ---- normalisation -------------------------------------------------------------------------

    /** Group norm of x (N, C, ..) with gamma/beta (C) or null. torch {@code F.group_norm}. */
    public Tensor groupNorm(Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        return GroupNormOp.forward(this, x, gamma, beta, groups, eps);
    }

    /** Layer norm over the last dimension of x (.., C) with gamma/beta (C) or null. torch {@code F.layer_norm}. */
    public Tensor layerNorm(Tensor x, Tensor gamma, Tensor beta, double eps) {
        return LayerNormOp.forward(this, x, gamma, beta, eps);
    }

    // ---- activations ---------------------------------------------------------------------------

    /** {@code x σ(x)}. */
    public Tensor silu(Tensor x) {
        return SavedInputOp.forward(this, SavedInputOp.Kind.SILU, x);
    }

    /** Exact GELU {@code x Φ(x)} (OpenCLIP, GEGLU). */
    public Tensor gelu(Tensor x) {
        return SavedInputOp.forward(this, SavedInputOp.Kind.GELU, x);
    }

    /** GELU with the tanh approximation. */
    public Tensor geluTanh(Tensor x) {
        return SavedInputOp.forward(this, SavedInputOp.Kind.GELU_TANH, x);
    }

    /** {@code x σ(1.702 x)} (CLIP ViT-L "quick_gelu"). */
    public Tensor quickGelu(Tensor x) {
        return SavedInputOp.forward(this, SavedInputOp.Kind.QUICK_GELU, x);
    }

    /**
     * GEGLU gate of a projected x (.., 2F): {@code a · gelu(gate)} where {@code a, gate = x.chunk(2, -1)}
     * → (.., F). diffusers/sgm {@code GEGLU} after its projection.
     */
    public Tensor geglu(Tensor x) {
        return SavedInputOp.forward(this, SavedInputOp.Kind.GEGLU, x);
    }

    // ---- attention -----------------------------------------------------------------------------

    /**
     * Softmax attention with scale {@code 1/sqrt(D)}: q (N, heads, Tq, D), k (N, heads, Tk, D),
     * v (N, heads, Tk, Dv) → (N, heads, Tq, Dv); causal: query i sees keys j <= i (CLIP).
     */
    public Tensor attention(Tensor q, Tensor k, Tensor v, boolean causal) {
        return AttentionOp.forward(this, q, k, v, causal, 1.0 / Math.sqrt(q.dim(-1)));
    }

    /** {@link #attention(Tensor, Tensor, Tensor, boolean)} with an explicit score scale. */
    public Tensor attention(Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        return AttentionOp.forward(this, q, k, v, causal, scale);
    }

    /**
     * Multi-head attention on unsplit heads: q (N, Tq, heads·D), k (N, Tk, heads·D), v (N, Tk, heads·Dv) → (N, Tq,
     * heads·Dv), scale 1/√D. The same values as {@link #splitHeads}, {@link #attention} and {@link #mergeHeads}, without
     * the copies where the backend's kernels read strided heads (the torch backend).
     */
    public Tensor attentionHeads(Tensor q, Tensor k, Tensor v, int heads, boolean causal) {
        if (heads <= 0) {
            throw new IllegalArgumentException("attentionHeads: " + heads + " heads");
        }
        return AttentionOp.forward(this, q, k, v, heads, causal, 1.0 / Math.sqrt((double) q.dim(-1) / heads));
    }

    /** (N, T, heads·D) → (N, heads, T, D). */
    public Tensor splitHeads(Tensor x, int heads) {
        int n = x.dim(0);
        int t = x.dim(1);
        int c = x.dim(2);
        if (c % heads != 0) {
            throw new IllegalArgumentException("splitHeads: " + x.describe() + " width not divisible by " + heads + " heads");
        }
        Tensor r = reshape(x, n, t, heads, c / heads);
        Tensor split = permute(r, 0, 2, 1, 3);
        release(r);
        return split;
    }

    /** (N, heads, T, D) → (N, T, heads·D). */
    public Tensor mergeHeads(Tensor x) {
        Tensor p = permute(x, 0, 2, 1, 3);   // (N, T, heads, D)
        return reshape(p, x.dim(0), x.dim(2), x.dim(1) * x.dim(3));
    }

    // ---- elementwise ---------------------------------------------------------------------------

    /** {@code a + b} with broadcasting (residual paths, biases). */
    public Tensor add(Tensor a, Tensor b) {
        return AddOp.forward(this, a, b, 1.0);
    }

    /** {@code a - b} with broadcasting. */
    public Tensor sub(Tensor a, Tensor b) {
        return AddOp.forward(this, a, b, -1.0);
    }

    /** {@code a + alpha · b} with broadcasting (LoRA bypass: {@code y + scale · up(down(x))}). */
    public Tensor addScaled(Tensor a, Tensor b, double alpha) {
        return AddOp.forward(this, a, b, alpha);
    }

    /**
     * A LoRA branch added to its linear layer's output: {@code y + scale · (x · downᵀ) · upᵀ}, y (.., N), x (.., K),
     * down (r, K), up (N, r). The values of {@code addScaled(y, linear(linear(x, down), up), scale)} in one op (the
     * torch backend fuses the addition into the second product).
     */
    public Tensor loraAdd(Tensor y, Tensor x, Tensor down, Tensor up, double scale) {
        return LoraAddOp.forward(this, y, x, down, up, scale);
    }

    /**
     * A linear layer with a LoRA on it: {@code x · Wᵀ + b + scale · (x · downᵀ) · upᵀ}, x (.., K), weight (N, K), bias
     * (N) or null, down (r, K), up (N, r). Where gradients are recorded (or a recomputation will record them) and
     * the rows outnumber the weight's enough, as one product with the LoRA folded into the weight
     * ({@code MergedLoraOp}: the same values up to the merged weight's rounding, less memory traffic); otherwise,
     * and in pure inference (a bypass LoRA's branches), {@link #linear} then {@link #loraAdd}.
     * {@code TENMIN_LORA_MERGE=0} keeps the branch everywhere.
     */
    public Tensor loraLinear(Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale) {
        if (mergesLora(x, weight)) {
            return MergedLoraOp.linear(this, x, weight, bias, down, up, scale);
        }
        Tensor y = linear(x, weight, bias);
        Tensor out = loraAdd(y, x, down, up, scale);
        release(y);
        return out;
    }

    /**
     * {@link #geglu} of {@link #loraLinear}: sgm's feed-forward projection with a LoRA on it and its GEGLU, weight
     * (2H, K), up (2H, r) → (.., H). Where the LoRA is merged, its value and gate halves are two products on the
     * merged weight's row blocks ({@code MergedLoraGegluOp}), so that the GEGLU runs on contiguous tensors;
     * {@code TENMIN_SPLIT_GEGLU=0} keeps one product and the GEGLU on its halves.
     */
    public Tensor loraLinearGeglu(Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale) {
        if (mergesLora(x, weight) && SPLIT_GEGLU.on()) {
            return MergedLoraGegluOp.forward(this, x, weight, bias, down, up, scale);
        }
        Tensor proj = loraLinear(x, weight, bias, down, up, scale);
        Tensor out = geglu(proj);
        release(proj);
        return out;
    }

    /**
     * A convolution with a LoCon on it: {@code conv(x, W, b) + scale · conv(conv(x, down), up)}, x (B, C, H, W),
     * weight (O, C, k, k), down (r, C, k, k) with the layer's stride and padding, up (O, r, 1, 1). Merged into the
     * weight where {@link #loraLinear} would merge, else the three convolutions and a scaled sum.
     */
    public Tensor loraConv2d(Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale, int stride,
                             int padding) {
        if (mergesLora(x, weight)) {
            return MergedLoraOp.conv2d(this, x, weight, bias, down, up, scale, stride, padding);
        }
        Tensor y = conv2d(x, weight, bias, stride, padding);
        Tensor h = conv2d(x, down, null, stride, padding);
        Tensor branch = conv2d(h, up, null, 1, 0);
        Tensor out = addScaled(y, branch, scale);
        release(y, h, branch);
        return out;
    }

    private boolean mergesLora(Tensor x, Tensor weight) {
        return !allowsInferenceKernels() && MERGE_LORA.on()
                && (MergedLoraOp.pays(x, weight) || Boolean.getBoolean(MERGE_ALWAYS_PROPERTY));
    }

    /** {@code a · b} elementwise with broadcasting. */
    public Tensor mul(Tensor a, Tensor b) {
        return MulOp.forward(this, a, b);
    }

    /** {@code a / b} elementwise with broadcasting. */
    public Tensor div(Tensor a, Tensor b) {
        return DivOp.forward(this, a, b);
    }

    /** {@code alpha · x}. */
    public Tensor scale(Tensor x, double alpha) {
        return AffineOp.forward(this, x, alpha, 0.0);
    }

    /** {@code x · scale + shift}. */
    public Tensor affine(Tensor x, double scale, double shift) {
        return AffineOp.forward(this, x, scale, shift);
    }

    /** An elementwise function ({@link Unary}), differentiable. */
    public Tensor unary(Unary op, Tensor x) {
        return UnaryOp.forward(this, op, x);
    }

    /** {@code exp(x)} (e.g. the VAE posterior's {@code std = exp(logvar / 2)}). */
    public Tensor exp(Tensor x) {
        return UnaryOp.forward(this, Unary.EXP, x);
    }

    /** {@code min(max(x, min), max)}; not differentiable (for images and sampling, not training). */
    public Tensor clamp(Tensor x, double min, double max) {
        requireNoGrad("clamp", x);
        return backend().clamp(scope, x, min, max);
    }

    // ---- layout --------------------------------------------------------------------------------

    /** A view with new sizes; one size may be -1 (inferred). */
    public Tensor reshape(Tensor x, int... dims) {
        return ReshapeOp.forward(this, x, inferShape(x, dims));
    }

    /** Dimensions reordered ({@code out.dim(i) = x.dim(dims[i])}), contiguous. */
    public Tensor permute(Tensor x, int... dims) {
        return PermuteOp.forward(this, x, dims);
    }

    /** Swaps two dimensions (contiguous copy). */
    public Tensor transpose(Tensor x, int dim0, int dim1) {
        int[] order = new int[x.rank()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        int a = x.shape().axis(dim0);
        int b = x.shape().axis(dim1);
        order[a] = b;
        order[b] = a;
        return permute(x, order);
    }

    /** Elements {@code [start, start+length)} of {@code dim}. */
    public Tensor narrow(Tensor x, int dim, int start, int length) {
        return NarrowOp.forward(this, x, dim, start, length);
    }

    /** Consecutive pieces of {@code dim} with the given sizes (which sum to its size). torch {@code split}. */
    public List<Tensor> split(Tensor x, int dim, int... sizes) {
        int total = 0;
        for (int s : sizes) {
            total += s;
        }
        if (total != x.dim(dim)) {
            throw new IllegalArgumentException("split " + x.describe() + " dim " + dim + " into " + Arrays.toString(sizes));
        }
        List<Tensor> out = new ArrayList<>();
        int start = 0;
        for (int s : sizes) {
            out.add(narrow(x, dim, start, s));
            start += s;
        }
        return out;
    }

    /** {@code n} equal pieces of {@code dim} (e.g. GEGLU halves, fused q/k/v). torch {@code chunk}. */
    public List<Tensor> chunk(Tensor x, int n, int dim) {
        int size = x.dim(dim);
        if (size % n != 0) {
            throw new IllegalArgumentException("chunk " + x.describe() + " into " + n + " along " + dim);
        }
        int[] sizes = new int[n];
        Arrays.fill(sizes, size / n);
        return split(x, dim, sizes);
    }

    /** Concatenation along {@code dim} (U-Net skip connections, text contexts). */
    public Tensor cat(int dim, Tensor... xs) {
        return CatOp.forward(this, List.of(xs), dim);
    }

    /** Concatenation along {@code dim}. */
    public Tensor cat(List<Tensor> xs, int dim) {
        return CatOp.forward(this, xs, dim);
    }

    /** Zero padding of the last two dims (the VAE's asymmetric (0, 1, 0, 1) before a stride-2 conv). */
    public Tensor pad2d(Tensor x, int left, int right, int top, int bottom) {
        return Pad2dOp.forward(this, x, left, right, top, bottom);
    }

    /** {@code x} broadcast to {@code shape}, materialised. */
    public Tensor expand(Tensor x, Shape shape) {
        return ExpandOp.forward(this, x, shape);
    }

    /** {@code x} in another dtype (the mixed-precision boundary); same tensor when already that dtype. */
    public Tensor cast(Tensor x, DType dtype) {
        return x.dtype() == dtype ? x : CastOp.forward(this, x, dtype);
    }

    /** Nearest-neighbour 2x upsampling (N, C, H, W) → (N, C, 2H, 2W). */
    public Tensor upsampleNearest2x(Tensor x) {
        return UpsampleOp.forward(this, x);
    }

    /** The same values, not tracked (gradient stops here). */
    public Tensor detach(Tensor x) {
        return backend().reshape(scope, x, x.shape());
    }

    // ---- reductions and loss -------------------------------------------------------------------

    /** Sum of all elements, a scalar. */
    public Tensor sum(Tensor x) {
        return SumOp.forward(this, x, new int[0], false, false);
    }

    /** Sum over {@code dims}. */
    public Tensor sum(Tensor x, int[] dims, boolean keepDim) {
        return SumOp.forward(this, x, dims, keepDim, false);
    }

    /** Mean of all elements, a scalar. */
    public Tensor mean(Tensor x) {
        return SumOp.forward(this, x, new int[0], false, true);
    }

    /** Mean over {@code dims}. */
    public Tensor mean(Tensor x, int[] dims, boolean keepDim) {
        return SumOp.forward(this, x, dims, keepDim, true);
    }

    /** {@code mean((pred - target)²)}, a scalar (the training loss, in fp32). */
    public Tensor mseLoss(Tensor pred, Tensor target) {
        return MseLossOp.forward(this, pred, target);
    }

    // ---- embeddings ----------------------------------------------------------------------------

    /** Rows of weight (V, D) at ids (..) I64 → (.., D) (token embeddings; also gathers activation rows). */
    public Tensor embedding(Tensor weight, Tensor ids) {
        return EmbeddingOp.forward(this, weight, ids);
    }

    /**
     * Sinusoidal embedding (cos first) of values (N) → (N, dim) F32: SDXL's timestep embedding
     * ({@code dim} = model channels) and size embeddings (256). Not differentiable.
     */
    public Tensor sinusoidalEmbedding(Tensor values, int dim) {
        requireNoGrad("sinusoidalEmbedding", values);
        return backend().sinusoidalEmbedding(scope, values, dim);
    }

    // ---- gradient checkpointing ----------------------------------------------------------------

    /** A block of model code: a function from tensors to one tensor, written against the given facade. */
    @FunctionalInterface
    public interface Block {
        Tensor apply(Functional f, List<Tensor> inputs);
    }

    /** A block with several outputs. */
    @FunctionalInterface
    public interface MultiBlock {
        List<Tensor> apply(Functional f, List<Tensor> inputs);
    }

    /**
     * Runs {@code block} on {@code inputs}; when {@code enabled} and recording, keeps only the inputs
     * and recomputes the block's forward during backward, with identical results. The block must use
     * the facade it is given and receive every tensor that carries gradient (other than parameters)
     * through {@code inputs}; capturing another activation throws during backward. When {@code enabled}
     * without recording (inference), the block runs in a child scope that is closed as it returns, so only
     * its outputs stay: memory bounded by one block instead of the whole network, same results.
     */
    public Tensor checkpoint(String name, boolean enabled, Block block, Tensor... inputs) {
        return CheckpointOp.forward(this, name, enabled, (f, in) -> List.of(block.apply(f, in)), List.of(inputs)).get(0);
    }

    /** {@link #checkpoint} for a block with several outputs. */
    public List<Tensor> checkpointAll(String name, boolean enabled, MultiBlock block, Tensor... inputs) {
        return CheckpointOp.forward(this, name, enabled, block, List.of(inputs));
    }

    // ---- early release ---------------------------------------------------------------------------

    /**
     * Tells the engine that the model code will not use these tensors again, so their memory can go before
     * the step scope closes: each is closed at once when no recorded op's backward reads its values (always,
     * without a tape), otherwise right after the last such backward. Only tensors made in this facade's scope
     * or its children are affected; anything else (weights, parameters, a block's inputs, a cast that returned
     * its argument) is left alone, as are nulls and closed tensors. Values and gradients do not change.
     */
    public void release(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t == null || t.isClosed() || t.requiresGrad() || !ownedHere(t)) {
                continue;
            }
            if (tape == null) {
                t.close();
            } else {
                tape.release(t);
            }
        }
    }

    private boolean ownedHere(Tensor t) {
        for (Scope s = t.scope(); s != null; s = s.parent()) {
            if (s == scope) {
                return true;
            }
        }
        return false;
    }

    // ---- backward ------------------------------------------------------------------------------

    /**
     * Backpropagates from a scalar {@code loss} (seed 1): leaf gradients are added into
     * {@link Tensor#grad()}. The tape is consumed (ops recorded so far are forgotten).
     */
    public void backward(Tensor loss) {
        if (loss.numel() != 1) {
            throw new IllegalArgumentException("backward(" + loss.describe() + "): not a single value; pass a seed");
        }
        try (Scope seedScope = scope.child("backward seed")) {
            backward(List.of(loss), List.of(seedScope.full(loss.shape(), loss.dtype(), 1.0)));
        }
    }

    /** Backpropagates from {@code root} with gradient {@code seed} (same shape), i.e. from {@code Σ root·seed}. */
    public void backward(Tensor root, Tensor seed) {
        backward(List.of(root), List.of(seed));
    }

    /** Backpropagates from several roots at once. */
    public void backward(List<Tensor> roots, List<Tensor> seeds) {
        if (tape == null) {
            throw new IllegalStateException("backward on an inference facade: create it with Functional.training");
        }
        tape.backward(roots, seeds);
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void requireNoGrad(String op, Tensor x) {
        if (records(x)) {
            throw new IllegalArgumentException(op + " is not differentiable but " + x.describe() + " carries gradient");
        }
    }

    private static Shape inferShape(Tensor x, int[] dims) {
        int infer = -1;
        long known = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] == -1) {
                if (infer >= 0) {
                    throw new IllegalArgumentException("reshape " + x.describe() + " to " + Arrays.toString(dims) + ": two -1");
                }
                infer = i;
            } else {
                known *= dims[i];
            }
        }
        int[] out = dims.clone();
        if (infer >= 0) {
            if (known == 0 || x.numel() % known != 0) {
                throw new IllegalArgumentException("reshape " + x.describe() + " to " + Arrays.toString(dims));
            }
            out[infer] = (int) (x.numel() / known);
        }
        Shape s = Shape.of(out);
        if (s.numel() != x.numel()) {
            throw new IllegalArgumentException("reshape " + x.describe() + " to " + s + ": element counts differ");
        }
        return s;
    }
}
