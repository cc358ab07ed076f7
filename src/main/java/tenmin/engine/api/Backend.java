package tenmin.engine.api;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * The op contract: the short list of kernels every backend implements, each forward next to the
 * backward kernels that undo it. Model code reaches it through {@code tenmin.engine.autograd.Functional};
 * backends ({@code cpu}: pure Java, the reference; {@code torch}: libtorch through FFM) implement it.
 *
 * <h2>Rules every op follows</h2>
 * <ul>
 *   <li>The first argument is the {@link Scope} that owns the results. Inputs are never modified,
 *       except by the {@code ...Into} ops, which take their destination first.</li>
 *   <li>Tensors are dense and row-major. Results are new contiguous tensors, except {@link #reshape}
 *       (a view sharing storage; a view keeps its storage alive after the base closes).</li>
 *   <li>Floating inputs of one op share a dtype (F32, BF16 or F16) and the result has it; nothing is
 *       promoted. Accumulation is fp32 (the {@code cpu} backend computes everything in fp32 and rounds
 *       results to bf16/fp16 storage; {@code torch} runs bf16 matmuls/convs with fp32 accumulation).
 *       F8_E4M3 is storage only ({@link DType#isStorageOnly}): casts, host copies and {@link #narrow} take it,
 *       other ops refuse it.</li>
 *   <li>Everything stays on the backend's device; only {@link #toHost}/{@link #toHostLongs}/
 *       {@code fromHost*} cross to the host, and those are sync points.</li>
 *   <li>Dimension arguments may be negative (count from the end). Bad shapes or dtypes throw
 *       {@link IllegalArgumentException} naming the tensors ({@link Tensor#describe()}).</li>
 *   <li>Kernels are deterministic: the same inputs on the same backend give bit-identical results
 *       (gradient checkpointing relies on it).</li>
 * </ul>
 * Each method names the ATen op it matches, which is what the {@code torch} backend calls.
 * Dimension legend: N batch, C channels, H/W spatial, T tokens, D head dim, B·H attention batch.
 */
public interface Backend extends AutoCloseable {

    // ---- identity, memory, tracing -------------------------------------------------------------

    /** Short name used in traces: {@code cpu}, {@code torch}. */
    String name();

    /** The device every tensor of this backend lives on. */
    Device device();

    /** The tracer ({@link Trace#wrap} returns a backend whose trace is not OFF). */
    default Trace trace() {
        return Trace.OFF;
    }

    /** Open tensors of this backend, over all scopes (tests assert it returns to zero). */
    long liveTensors();

    /**
     * Bytes of the storage held by open tensors: each storage counts once, from its allocation until the last
     * tensor on it (the base or a {@link #reshape} view) closes ({@link MemoryMeter}).
     */
    long liveBytes();

    /**
     * The most {@link #liveBytes()} held at once since the backend was made or {@link #resetPeakLiveBytes()}:
     * the high-water mark of tensor storage (a device allocator adds its cache and the kernels' workspaces).
     */
    long peakLiveBytes();

    /** Starts a new {@link #peakLiveBytes()} measurement at the current live bytes. */
    void resetPeakLiveBytes();

    /** Waits until all queued device work has finished (a sync point; no-op on the CPU). */
    default void synchronize() {
    }

    /**
     * Opens ({@code true}) or closes the region an external CUDA profiler records when started with
     * {@code ncu --profile-from-start off} ({@code cudaProfilerStart}/{@code Stop}); queued work is finished first,
     * so the region holds exactly the kernels issued inside it. A no-op off CUDA. Used by {@code tenmin bench
     * --cuda-profile}.
     */
    default void profilerRegion(boolean open) {
    }

    /**
     * True when tensor storage lives on the Java heap (the pure-Java backend: float arrays, 4 bytes a value
     * whatever the dtype), so that the heap limit bounds what fits; false for native or device memory.
     */
    default boolean storesOnJavaHeap() {
        return false;
    }

    /** Releases backend-wide resources (thread pool, library handles); tensors must be closed first. */
    @Override
    void close();

    // ---- creation and host copies --------------------------------------------------------------

    /** A tensor with every element {@code value}. ATen {@code full} / {@code zeros}. */
    Tensor full(Scope s, Shape shape, DType dtype, double value);

    /**
     * Uploads row-major host floats, rounded to the floating {@code dtype} (for F8_E4M3 as
     * {@link tenmin.formats.Fp8E4m3#encode} does). A sync point.
     */
    Tensor fromHost(Scope s, float[] data, Shape shape, DType dtype);

    /** Uploads row-major host longs as an I64 tensor. A sync point. */
    Tensor fromHost(Scope s, long[] data, Shape shape);

    /**
     * Uploads raw little-endian elements of {@code dtype} ({@code numel * dtype size} bytes, e.g. a
     * memory-mapped safetensors entry) without a float conversion on the host where the device can
     * store them directly. A sync point.
     */
    Tensor fromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType dtype);

    /**
     * A frozen (never written) F32 tensor from little-endian {@code stored} bytes (fp8 e4m3fn, fp16, bf16 or fp32):
     * the values are converted exactly. A backend may keep 8- and 16-bit values as they are (the cpu backend does: half
     * the memory for an fp16 or bf16 checkpoint's weights); in-place ops on the result are not allowed.
     */
    default Tensor frozenFromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType stored) {
        if (stored == DType.F32) {
            return fromHostBytes(s, bytes, shape, DType.F32);
        }
        float[] v = new float[shape.numelInt()];
        tenmin.formats.SafetensorsFile.convertToFloats(bytes, stored.stDType(), v, 0, v.length, "frozenFromHostBytes");
        return fromHost(s, v, shape, DType.F32);
    }

    /**
     * The dtype a tensor's values are stored in: 16-bit for a {@link #frozenFromHostBytes} tensor that this backend
     * keeps in 16 bits (its {@link Tensor#dtype()} is still F32), else the tensor's dtype.
     */
    default DType frozenStorage(Tensor t) {
        return t.dtype();
    }

    /** Downloads a floating tensor as fp32, row-major. A sync point. */
    float[] toHost(Tensor t);

    /**
     * A clock of this backend's work for per-op timing ({@link OpTimes}, {@code tenmin bench train --op-times}); the
     * caller closes it. Default: the wall clock (ops that return when they are done).
     */
    default DeviceClock deviceClock() {
        return DeviceClock.wall();
    }

    /**
     * Starts downloading the values the floating tensors {@code src} hold now, as {@link #toHostAll} does, without
     * waiting for them: the returned completion, called once from any thread, waits and fills {@code dst} (and frees
     * what the transfer held). The tensors may be changed by later ops as soon as this returns: the copy is ordered
     * before them. A GPU backend packs the values on the device and copies them into page-locked memory behind the
     * work already queued, so the caller's thread goes on issuing ops (the trainer's saves); the default copies now.
     */
    default Runnable toHostLater(List<Tensor> src, List<float[]> dst) {
        toHostAll(src, dst);
        return () -> { };
    }

    /**
     * Downloads several floating tensors as fp32, row-major, into {@code dst} (one array per tensor, at least its
     * element count long). One sync point: a backend with a device packs them into one transfer (the optimizer
     * step's gradients: thousands of tensors).
     */
    default void toHostAll(List<Tensor> src, List<float[]> dst) {
        checkBulk("toHostAll", src, dst);
        for (int i = 0; i < src.size(); i++) {
            float[] v = toHost(src.get(i));
            System.arraycopy(v, 0, dst.get(i), 0, v.length);
        }
    }

    /**
     * Uploads host floats into existing floating tensors ({@code dst[i] = src[i]}, rounded to each tensor's dtype).
     * A backend with a device packs them into one transfer (the optimizer step's new values).
     */
    default void copyFromHostAll(List<Tensor> dst, List<float[]> src) {
        checkBulk("copyFromHostAll", dst, src);
        for (int i = 0; i < dst.size(); i++) {
            Tensor t = dst.get(i);
            try (Scope tmp = t.scope().child("upload")) {
                float[] v = src.get(i).length == t.numel() ? src.get(i) : Arrays.copyOf(src.get(i), (int) t.numel());
                copyInto(t, tmp.fromHost(v, t.shape(), t.dtype()));
            }
        }
    }

    /**
     * True when this backend can alias storage: {@link #viewRange} and {@link #relocate} work (the torch backend),
     * so that many small tensors can live in one flat buffer and be updated by a few large ops (the optimizer step on
     * the device). The pure-Java backend cannot (its tensors are whole arrays).
     */
    default boolean canAlias() {
        return false;
    }

    /**
     * A view of elements {@code [offset, offset + shape.numel())} of {@code base}, a contiguous 1-d tensor, with
     * {@code shape} (row-major) and {@code base}'s dtype: writes to either are seen by both. Only where
     * {@link #canAlias()}.
     */
    default Tensor viewRange(Scope s, Tensor base, long offset, Shape shape) {
        throw new UnsupportedOperationException(name() + " backend cannot alias storage (viewRange)");
    }

    /**
     * Moves {@code t}'s values into elements {@code [offset, offset + t.numel())} of {@code arena} (a contiguous
     * 1-d tensor of t's dtype) and makes {@code t} a view of them ({@link #viewRange}): the tensor object, its name
     * and its scope stay; its old storage is released. Only where {@link #canAlias()}.
     */
    default void relocate(Tensor t, Tensor arena, long offset) {
        throw new UnsupportedOperationException(name() + " backend cannot alias storage (relocate)");
    }

    /** The arguments of {@link #toHostAll} / {@link #copyFromHostAll}: one array per floating tensor, long enough. */
    static void checkBulk(String op, List<Tensor> tensors, List<float[]> arrays) {
        if (tensors.size() != arrays.size()) {
            throw new IllegalArgumentException(op + ": " + tensors.size() + " tensors but " + arrays.size() + " arrays");
        }
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            if (!t.dtype().isFloat() || arrays.get(i).length < t.numel()) {
                throw new IllegalArgumentException(op + ": tensor " + i + " (" + t.shape() + " " + t.dtype()
                        + ") and an array of " + arrays.get(i).length);
            }
        }
    }

    /** Downloads an I64 tensor, row-major. A sync point. */
    long[] toHostLongs(Tensor t);

    /** Standard normal values drawn from {@code gen} (counter based, see {@link Generator}). ATen {@code randn}. */
    Tensor randn(Scope s, Shape shape, DType dtype, Generator gen);

    /** Uniform values in {@code [low, high)} drawn from {@code gen}. ATen {@code uniform_}. */
    Tensor randUniform(Scope s, Shape shape, DType dtype, double low, double high, Generator gen);

    // ---- in place: destination first ------------------------------------------------------------

    /** {@code dst[i] = value}. ATen {@code fill_}. */
    void fillInto(Tensor dst, double value);

    /** {@code dst[i] = src[i]} for equal element counts, converting dtype (float↔float). ATen {@code copy_}. */
    void copyInto(Tensor dst, Tensor src);

    /**
     * {@code y += alpha * x}, same shape (gradient accumulation); x may have another floating dtype (computed in the
     * wider of the two, stored in y's: a bf16 gradient added into an fp32 one exactly). ATen {@code add_(x, alpha)}.
     */
    void axpyInto(Tensor y, double alpha, Tensor x);

    /**
     * {@code ys[i] += xs[i]} for every i in order, as {@link #axpyInto} with alpha 1: the parameter gradients of one
     * backward, summed at its end ({@code Tape}). This default adds pair by pair; a backend can add the pairs whose
     * ys lie back to back in one buffer with a few large ops instead of two small ones each.
     */
    default void axpyIntoAll(List<Tensor> ys, List<Tensor> xs) {
        if (ys.size() != xs.size()) {
            throw new IllegalArgumentException("axpyIntoAll: " + ys.size() + " targets but " + xs.size() + " sources");
        }
        for (int i = 0; i < ys.size(); i++) {
            axpyInto(ys.get(i), 1.0, xs.get(i));
        }
    }

    /** {@code y *= alpha} (gradient clipping). ATen {@code mul_}. */
    void scaleInto(Tensor y, double alpha);

    // ---- layout ---------------------------------------------------------------------------------

    /** A view of {@code x} with another shape of the same element count. ATen {@code reshape}/{@code view}. */
    Tensor reshape(Scope s, Tensor x, Shape shape);

    /**
     * {@code x} with dimensions reordered, {@code out.dim(i) = x.dim(dims[i])}, as a contiguous copy.
     * ATen {@code permute(...).contiguous()}. Backward: permute by the inverse order.
     */
    Tensor permute(Scope s, Tensor x, int... dims);

    /**
     * Elements {@code [start, start+length)} of dimension {@code dim}, copied. ATen {@code narrow(...).contiguous()}.
     * Also for F8_E4M3 tensors along dimension 0 (a row block of a fused fp8 weight).
     */
    Tensor narrow(Scope s, Tensor x, int dim, int start, int length);

    /**
     * Backward of {@link #narrow}: zeros of {@code inputShape} with {@code dOut} placed at
     * {@code [start, start+dOut.dim(dim))} of {@code dim}. ATen {@code slice_backward}.
     */
    Tensor narrowBackward(Scope s, Tensor dOut, Shape inputShape, int dim, int start);

    /** Concatenation along {@code dim}; other dimensions equal. ATen {@code cat}. Backward: {@link #narrow}. */
    Tensor cat(Scope s, List<Tensor> xs, int dim);

    /**
     * Zero padding of the last two dimensions: {@code (.., H, W) -> (.., top+H+bottom, left+W+right)}.
     * ATen {@code constant_pad_nd(x, [left, right, top, bottom], 0)}. Backward: {@link #narrow} twice.
     */
    Tensor pad2d(Scope s, Tensor x, int left, int right, int top, int bottom);

    /**
     * {@code x} broadcast to {@code shape} (NumPy rules: size-1 or missing leading dims repeat), copied.
     * ATen {@code expand(...).contiguous()}. Backward: {@link #sum} over the broadcast dims.
     */
    Tensor expand(Scope s, Tensor x, Shape shape);

    /**
     * {@code x} converted to {@code dtype} (round to nearest even when narrowing; to F8_E4M3 as
     * {@link tenmin.formats.Fp8E4m3#encode}: NaN beyond ±464, as c10). ATen {@code _to_copy}. F8_E4M3, which no other op
     * takes, is converted to and from every floating dtype here.
     */
    Tensor cast(Scope s, Tensor x, DType dtype);

    // ---- elementwise (NumPy broadcasting between the two operands) --------------------------------

    /** {@code a + alpha * b}. ATen {@code add.Tensor}; {@code alpha = -1} is {@code sub}. */
    Tensor add(Scope s, Tensor a, Tensor b, double alpha);

    /** {@code a * b}. ATen {@code mul.Tensor}. */
    Tensor mul(Scope s, Tensor a, Tensor b);

    /** {@code a / b}. ATen {@code div.Tensor}. */
    Tensor div(Scope s, Tensor a, Tensor b);

    /** {@code x * scale + shift}. ATen {@code mul.Scalar} then {@code add.Scalar}. */
    Tensor affine(Scope s, Tensor x, double scale, double shift);

    /** {@code op(x)} elementwise. ATen: the op of the same name. */
    Tensor unary(Scope s, Unary op, Tensor x);

    /** {@code min(max(x, min), max)}. ATen {@code clamp}. */
    Tensor clamp(Scope s, Tensor x, double min, double max);

    // ---- activations ---------------------------------------------------------------------------

    /** {@code x * sigmoid(x)}. ATen {@code silu}. */
    Tensor silu(Scope s, Tensor x);

    /** {@code dOut * σ(x) (1 + x (1 - σ(x)))}. ATen {@code silu_backward}. */
    Tensor siluBackward(Scope s, Tensor dOut, Tensor x);

    /** GELU, exact ({@code x Φ(x)}) or tanh-approximated. ATen {@code gelu(x, approximate)}. */
    Tensor gelu(Scope s, Tensor x, GeluApproximation approximation);

    /** ATen {@code gelu_backward(dOut, x, approximate)}. */
    Tensor geluBackward(Scope s, Tensor dOut, Tensor x, GeluApproximation approximation);

    /**
     * GEGLU: {@code a · gelu(b)} (erf GELU) where a and b are the halves of x's last dimension: (.., 2H) → (.., H).
     * This default narrows, applies {@link #gelu} and {@link #mul}; a backend can read the halves as views (the SDXL
     * U-Net's 70 feed-forward layers: four engine ops and two copies each otherwise).
     */
    default Tensor geglu(Scope s, Tensor x) {
        int h = gegluHalf("geglu", x, null);
        int last = x.rank() - 1;
        Tensor a = narrow(s, x, last, 0, h);
        Tensor b = narrow(s, x, last, h, h);
        Tensor g = gelu(s, b, GeluApproximation.NONE);
        Tensor out = mul(s, a, g);
        a.close();
        b.close();
        g.close();
        return out;
    }

    /**
     * {@code geglu(linear(x, weight, bias))} for inference: x (.., K), weight (2H, K), bias (2H) or null → (.., H).
     * This default runs the two ops; a backend may compute each half's product on its own rows of the weight so
     * that the elementwise kernels read contiguous halves (the SDXL U-Net's 70 feed-forward layers: strided GELU
     * and product were 11 % of a sampling step's device time on an H100).
     */
    default Tensor linearGeglu(Scope s, Tensor x, Tensor weight, Tensor bias) {
        Tensor proj = linear(s, x, weight, bias);
        Tensor out = geglu(s, proj);
        proj.close();
        return out;
    }

    /** dx (.., 2H) of {@link #geglu}: [dOut · gelu(b), gelu'(b) · dOut · a]. This default composes the ops it needs. */
    default Tensor gegluBackward(Scope s, Tensor dOut, Tensor x) {
        int h = gegluHalf("gegluBackward", x, dOut);
        int last = x.rank() - 1;
        Tensor a = narrow(s, x, last, 0, h);
        Tensor b = narrow(s, x, last, h, h);
        Tensor g = gelu(s, b, GeluApproximation.NONE);
        Tensor da = mul(s, dOut, g);
        Tensor dg = mul(s, dOut, a);
        Tensor db = geluBackward(s, dg, b, GeluApproximation.NONE);
        Tensor dx = cat(s, List.of(da, db), last);
        for (Tensor t : new Tensor[] {a, b, g, da, dg, db}) {
            t.close();
        }
        return dx;
    }

    /** {@code x * sigmoid(1.702 x)} (CLIP ViT-L's "quick_gelu"; no single ATen op: mul + sigmoid). */
    Tensor quickGelu(Scope s, Tensor x);

    /** {@code dOut * (σ(1.702x) + 1.702 x σ(1.702x)(1 - σ(1.702x)))}. */
    Tensor quickGeluBackward(Scope s, Tensor dOut, Tensor x);

    // ---- matrix products -----------------------------------------------------------------------

    /**
     * Matrix product {@code op(a) · op(b)} where {@code op} transposes the last two dims when asked.
     * {@code a} is (M, K) or (B, M, K) (after op), {@code b} is (K, N) or (B, K, N); a 2-D {@code b}
     * is shared by every batch of a 3-D {@code a}. Result (M, N) or (B, M, N). ATen {@code mm}/{@code bmm}
     * on transposed views.
     */
    Tensor matmul(Scope s, Tensor a, Tensor b, boolean transA, boolean transB);

    /**
     * {@code x · weightᵀ + bias}: x (.., K), weight (N, K), bias (N) or null → (.., N). ATen {@code linear}
     * ({@code addmm}). Backward: dx = dOut · weight, dWeight = dOutᵀ · x ({@link #matmul}), dBias = Σ dOut.
     */
    Tensor linear(Scope s, Tensor x, Tensor weight, Tensor bias);

    // ---- convolution ---------------------------------------------------------------------------

    /**
     * 2-D cross-correlation: x (N, C, H, W), weight (O, C, kH, kW), bias (O) or null, equal stride
     * and zero padding on both axes → (N, O, Ho, Wo), {@code Ho = (H + 2p - kH) / stride + 1}.
     * ATen {@code convolution(x, w, b, stride, padding, dilation 1, transposed false, output_padding 0, groups 1)}.
     */
    Tensor convolution(Scope s, Tensor x, Tensor weight, Tensor bias, int stride, int padding);

    /**
     * A LoRA branch added to its linear layer's output: {@code y + scale · (x · downᵀ) · upᵀ} with x (.., K), down (r, K),
     * up (N, r), y (.., N); returns the sum and the branch's hidden {@code x · downᵀ} (.., r), which the backward reads.
     * This default composes {@link #linear} twice and {@link #add}; a backend can fuse the scaled addition into the
     * second product (one op instead of three per LoCon linear module).
     */
    default LoraResult loraAdd(Scope s, Tensor y, Tensor x, Tensor down, Tensor up, double scale) {
        checkLora("loraAdd", y, x, down, up);
        Tensor h = linear(s, x, down, null);
        Tensor branch = linear(s, h, up, null);
        Tensor out = add(s, y, branch, scale);
        branch.close();
        return new LoraResult(out, h);
    }

    /**
     * A LoRA folded into its layer's weight, {@code weight + scale · up · down}: weight (N, K) with down (r, K) and up
     * (N, r), or a convolution's weight (O, C, k, k) with down (r, C, k, k) and up (O, r, 1, 1) (products over the
     * flattened C·k·k); one dtype, the result has weight's shape. Training multiplies by it instead of running the
     * branch on every row or pixel where that moves less memory ({@code Functional#loraLinear}). This default
     * composes {@link #matmul} and {@link #add}; a backend can do it as one product with the addition in its
     * epilogue (the sum rounded once).
     */
    default Tensor loraMerge(Scope s, Tensor weight, Tensor down, Tensor up, double scale) {
        checkLoraMerge(weight, down, up);
        int n = weight.dim(0);
        int r = down.dim(0);
        int k = (int) (weight.numel() / n);
        Tensor d2 = down.rank() == 2 ? down : reshape(s, down, Shape.of(r, k));
        Tensor u2 = up.rank() == 2 ? up : reshape(s, up, Shape.of(n, r));
        Tensor delta = matmul(s, u2, d2, false, false);
        Tensor shaped = weight.rank() == 2 ? delta : reshape(s, delta, weight.shape());
        Tensor out = add(s, weight, shaped, scale);
        for (Tensor t : new Tensor[] {d2 == down ? null : d2, u2 == up ? null : u2, delta, shaped == delta ? null : shaped}) {
            if (t != null) {
                t.close();
            }
        }
        return out;
    }

    /**
     * Gradients of {@link #loraAdd} (dy is dOut itself): dx (x's shape), dDown (r, K), dUp (N, r), each only when asked
     * (else null). The default: dBranch = scale · dOut, then {@link #linearBackward} through up and through down.
     */
    default LoraGrads loraAddBackward(Scope s, Tensor dOut, Tensor x, Tensor hidden, Tensor down, Tensor up, double scale,
                                      boolean needX, boolean needDown, boolean needUp) {
        Tensor dBranch = scale == 1.0 ? dOut : affine(s, dOut, scale, 0.0);
        LayerGrads throughUp = linearBackward(s, dBranch, hidden, up, new OutputMask(true, needUp, false));
        if (dBranch != dOut) {
            dBranch.close();
        }
        LayerGrads throughDown = needX || needDown
                ? linearBackward(s, throughUp.dx(), x, down, new OutputMask(needX, needDown, false))
                : new LayerGrads(null, null, null);
        throughUp.dx().close();
        return new LoraGrads(throughDown.dx(), throughDown.dWeight(), throughUp.dWeight());
    }

    /**
     * H, half of x's last dimension 2H, for {@link #geglu} / {@link #gegluBackward} (with {@code dOut} (.., H), or null).
     */
    static int gegluHalf(String op, Tensor x, Tensor dOut) {
        int h = x.dim(-1) / 2;
        if (x.dim(-1) != 2 * h || (dOut != null && !dOut.shape().equals(x.shape().withLast(h)))) {
            throw new IllegalArgumentException(op + ": x " + x.describe() + " must be (.., 2H)"
                    + (dOut == null ? "" : " and dOut " + dOut.describe() + " (.., H)"));
        }
        return h;
    }

    /** The operands of {@link #linearBackward}: dy (.., N), x (.., K) with as many rows, weight (N, K). */
    static void checkLinearBackward(Tensor dy, Tensor x, Tensor weight) {
        int n = dy.dim(-1);
        int k = x.dim(-1);
        if (weight.rank() != 2 || weight.dim(0) != n || weight.dim(1) != k || dy.numel() / n != x.numel() / k) {
            throw new IllegalArgumentException("linearBackward: dy " + dy.describe() + ", x " + x.describe()
                    + " and weight " + weight.describe() + " do not fit y = x Wᵀ + b");
        }
    }

    /**
     * The operands of {@link #loraMerge}: weight (N, ..) of rank 2 or 4, down (r, ..) with weight's trailing
     * dimensions, up (N, r) or (N, r, 1, 1).
     */
    static void checkLoraMerge(Tensor weight, Tensor down, Tensor up) {
        boolean fits = (weight.rank() == 2 || weight.rank() == 4) && down.rank() == weight.rank()
                && up.rank() == weight.rank() && up.dim(0) == weight.dim(0) && up.dim(1) == down.dim(0)
                && up.numel() == (long) up.dim(0) * up.dim(1);
        for (int i = 1; fits && i < weight.rank(); i++) {
            fits = down.dim(i) == weight.dim(i);
        }
        if (!fits) {
            throw new IllegalArgumentException("loraMerge: weight " + weight.describe() + ", down " + down.describe()
                    + " and up " + up.describe() + " do not fit weight + up · down");
        }
    }

    /** Refuses a storage-only tensor ({@link DType#isStorageOnly}) as an op's input: model code casts it first. */
    static void checkComputable(String op, Tensor t) {
        if (t != null && t.dtype().isStorageOnly()) {
            throw new IllegalArgumentException(op + ": " + t.describe() + " is stored as " + t.dtype()
                    + ", which no op computes in; cast it to f32, bf16 or f16 first");
        }
    }

    /** The operands of {@link #loraAdd}: x (.., K), down (r, K), up (N, r), y (.., N) with as many rows as x. */
    static void checkLora(String op, Tensor y, Tensor x, Tensor down, Tensor up) {
        int k = x.dim(-1);
        int n = y.dim(-1);
        if (down.rank() != 2 || up.rank() != 2 || down.dim(1) != k || up.dim(0) != n || up.dim(1) != down.dim(0)
                || x.numel() / k != y.numel() / n) {
            throw new IllegalArgumentException(op + ": y " + y.describe() + ", x " + x.describe() + ", down "
                    + down.describe() + " and up " + up.describe() + " do not fit y + (x downᵀ) upᵀ");
        }
    }

    /**
     * Gradients of {@link #linear} selected by {@code mask}, rows flattened to M: dx = dy · W (x's shape),
     * dWeight = dyᵀ · x (N, K), dBias = Σ_rows dy (N); unselected ones are null. This default composes
     * {@link #reshape}, {@link #matmul} and {@link #sum}; a backend can keep the flattening out of its op count
     * (the recipe's backward ran 9,962 reshapes, three per linear layer). PyTorch: the backward of F.linear.
     */
    default LayerGrads linearBackward(Scope s, Tensor dy, Tensor x, Tensor weight, OutputMask mask) {
        checkLinearBackward(dy, x, weight);
        int n = dy.dim(-1);
        int k = x.dim(-1);
        int m = (int) (dy.numel() / n);
        Tensor dy2 = reshape(s, dy, Shape.of(m, n));
        Tensor dx = null;
        Tensor dw = null;
        Tensor db = null;
        if (mask.input()) {
            Tensor dx2 = matmul(s, dy2, weight, false, false);
            dx = reshape(s, dx2, x.shape());
            dx2.close();
        }
        if (mask.weight()) {
            Tensor x2 = reshape(s, x, Shape.of(m, k));
            dw = matmul(s, dy2, x2, true, false);
            x2.close();
        }
        if (mask.bias()) {
            db = sum(s, dy2, new int[] {0}, false);
        }
        dy2.close();
        return new LayerGrads(dx, dw, db);
    }

    /**
     * Gradients of {@link #convolution} selected by {@code mask}: dx (N, C, H, W), dWeight (O, C, kH, kW),
     * dBias (O); unselected ones are null. ATen {@code convolution_backward(..., output_mask)}.
     */
    LayerGrads convolutionBackward(Scope s, Tensor dOut, Tensor x, Tensor weight, int stride, int padding,
                                   OutputMask mask);

    // ---- normalisation -------------------------------------------------------------------------

    /**
     * Group normalisation of x (N, C, ..) over {@code groups} groups of channels, with optional
     * per-channel gamma/beta (C): {@code y = (x - mean) * rstd * gamma + beta}. Also returns mean and
     * rstd (N, groups) for the backward. ATen {@code native_group_norm}.
     */
    NormResult groupNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, int groups, double eps);

    /**
     * Group normalisation computed in fp32 for inference (sgm's {@code GroupNorm32} when no gradient is wanted): x
     * (N, C, ..) in any float dtype, gamma and beta fp32 (C); the result in x's dtype, rounded once. This default
     * widens x, runs {@link #groupNorm} and narrows the result; a backend may need fewer passes over memory (the
     * SDXL U-Net's 46 such norms were 15 % of a sampling step's device time on an H100).
     */
    default Tensor groupNormInference32(Scope s, Tensor x, Tensor gamma32, Tensor beta32, int groups, double eps) {
        Tensor x32 = cast(s, x, DType.F32);
        NormResult r = groupNorm(s, x32, gamma32, beta32, groups, eps);
        r.mean().close();
        r.rstd().close();
        if (x32 != x) {
            x32.close();
        }
        Tensor out = cast(s, r.y(), x.dtype());
        if (out != r.y()) {
            r.y().close();
        }
        return out;
    }

    /** ATen {@code native_group_norm_backward}: dx, dWeight (gamma), dBias (beta) selected by {@code mask}. */
    LayerGrads groupNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, int groups,
                                 OutputMask mask);

    /**
     * Layer normalisation of x (.., C) over its last dimension with optional gamma/beta (C); mean and
     * rstd have shape (.., 1). ATen {@code native_layer_norm(x, [C], gamma, beta, eps)}.
     */
    NormResult layerNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, double eps);

    /** ATen {@code native_layer_norm_backward}. */
    LayerGrads layerNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, OutputMask mask);

    // ---- attention -----------------------------------------------------------------------------

    /**
     * Scaled dot-product attention {@code softmax(q kᵀ · scale [+ causal mask]) v} per batch and head:
     * q (N, heads, Tq, D), k (N, heads, Tk, D), v (N, heads, Tk, Dv) → out (N, heads, Tq, Dv) and the
     * row log-sum-exp (N, heads, Tq) in F32 of the scaled, masked scores, which the backward needs.
     * Causal: query i sees keys {@code j <= i}. Memory stays bounded (no full score matrix is kept).
     * ATen {@code _scaled_dot_product_flash_attention} / {@code _scaled_dot_product_cudnn_attention}
     * (dropout 0).
     */
    AttentionResult attention(Scope s, Tensor q, Tensor k, Tensor v, boolean causal, double scale);

    /** Gradients dq, dk, dv of {@link #attention}. ATen {@code _scaled_dot_product_*_attention_backward}. */
    AttentionGrads attentionBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, AttentionResult forward,
                                     boolean causal, double scale);

    /**
     * {@link #attention} on tensors whose heads are not yet split: q (N, Tq, heads·D), k (N, Tk, heads·D),
     * v (N, Tk, heads·Dv) → out (N, Tq, heads·Dv), and the log-sum-exp (N, heads, Tq). The same as splitting the heads
     * ({@code reshape} + {@code permute(0, 2, 1, 3)}), {@link #attention} and merging them back, which is what this
     * default does; a backend whose kernels read strided heads does it without the copies (the SDXL U-Net's 140
     * attentions per call made 700 of its 3,164 ops copies).
     */
    default AttentionResult attentionHeads(Scope s, Tensor q, Tensor k, Tensor v, int heads, boolean causal,
                                           double scale) {
        checkHeads("attentionHeads", heads, q, k, v);
        Tensor qh = splitHeads(s, q, heads);
        Tensor kh = splitHeads(s, k, heads);
        Tensor vh = splitHeads(s, v, heads);
        AttentionResult r = attention(s, qh, kh, vh, causal, scale);
        qh.close();
        kh.close();
        vh.close();
        Tensor merged = mergeHeads(s, r.out());
        r.out().close();
        return new AttentionResult(merged, r.logSumExp());
    }

    /** Gradients dq, dk, dv, each (N, T, heads·D), of {@link #attentionHeads}; the default splits and merges. */
    default AttentionGrads attentionHeadsBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, int heads,
                                                  AttentionResult forward, boolean causal, double scale) {
        checkHeads("attentionHeadsBackward", heads, q, k, v);
        Tensor[] split = {splitHeads(s, dOut, heads), splitHeads(s, q, heads), splitHeads(s, k, heads),
            splitHeads(s, v, heads), splitHeads(s, forward.out(), heads)};
        AttentionGrads g = attentionBackward(s, split[0], split[1], split[2], split[3],
                new AttentionResult(split[4], forward.logSumExp()), causal, scale);
        for (Tensor t : split) {
            t.close();
        }
        Tensor dq = mergeHeads(s, g.dq());
        Tensor dk = mergeHeads(s, g.dk());
        Tensor dv = mergeHeads(s, g.dv());
        g.dq().close();
        g.dk().close();
        g.dv().close();
        return new AttentionGrads(dq, dk, dv);
    }

    /** (N, T, heads·D) → (N, heads, T, D), contiguous. */
    private Tensor splitHeads(Scope s, Tensor x, int heads) {
        Tensor r = reshape(s, x, Shape.of(x.dim(0), x.dim(1), heads, x.dim(2) / heads));
        Tensor p = permute(s, r, 0, 2, 1, 3);
        r.close();
        return p;
    }

    /** (N, heads, T, D) → (N, T, heads·D), contiguous. */
    private Tensor mergeHeads(Scope s, Tensor x) {
        Tensor p = permute(s, x, 0, 2, 1, 3);
        Tensor r = reshape(s, p, Shape.of(x.dim(0), x.dim(2), x.dim(1) * x.dim(3)));
        p.close();
        return r;
    }

    /** q, k, v of {@link #attentionHeads}: rank 3, widths divisible by {@code heads}, keys and values alike. */
    static void checkHeads(String op, int heads, Tensor q, Tensor k, Tensor v) {
        if (heads <= 0 || q.rank() != 3 || k.rank() != 3 || v.rank() != 3 || q.dim(2) % heads != 0
                || v.dim(2) % heads != 0 || q.dim(2) != k.dim(2) || k.dim(1) != v.dim(1) || q.dim(0) != k.dim(0)
                || k.dim(0) != v.dim(0)) {
            throw new IllegalArgumentException(op + ": expects q (N, Tq, heads·D), k (N, Tk, heads·D), v (N, Tk,"
                    + " heads·Dv) with " + heads + " heads, got " + q.describe() + ", " + k.describe() + ", "
                    + v.describe());
        }
    }

    // ---- resampling ----------------------------------------------------------------------------

    /** Nearest-neighbour 2x upsampling of (N, C, H, W) → (N, C, 2H, 2W). ATen {@code upsample_nearest2d}. */
    Tensor upsampleNearest2x(Scope s, Tensor x);

    /** Sum of each 2x2 block of dOut (N, C, 2H, 2W) → (N, C, H, W). ATen {@code upsample_nearest2d_backward}. */
    Tensor upsampleNearest2xBackward(Scope s, Tensor dOut);

    // ---- reductions and loss -------------------------------------------------------------------

    /** Sum over {@code dims} (empty: all, giving a scalar), keeping them as size 1 when asked. ATen {@code sum.dim_IntList}. */
    Tensor sum(Scope s, Tensor x, int[] dims, boolean keepDim);

    /** Mean over {@code dims} (empty: all). ATen {@code mean.dim}. */
    Tensor mean(Scope s, Tensor x, int[] dims, boolean keepDim);

    /** {@code mean((pred - target)²)}, a scalar of the inputs' dtype. ATen {@code mse_loss(reduction=mean)}. */
    Tensor mseLoss(Scope s, Tensor pred, Tensor target);

    /** {@code dLoss · 2 (pred - target) / numel}, with dLoss a scalar. ATen {@code mse_loss_backward}. */
    Tensor mseLossBackward(Scope s, Tensor dLoss, Tensor pred, Tensor target);

    // ---- embeddings ----------------------------------------------------------------------------

    /**
     * Row lookup: weight (V, D), ids (..) I64 → (.., D). ATen {@code embedding}. Also gathers rows of an
     * activation (e.g. the EOS token of each prompt: flatten (N, T, D) to (N·T, D) and look up n·T + pos).
     */
    Tensor embedding(Scope s, Tensor weight, Tensor ids);

    /** Scatter-add of dOut (.., D) into zeros (numEmbeddings, D) at ids. ATen {@code embedding_dense_backward}. */
    Tensor embeddingBackward(Scope s, Tensor dOut, Tensor ids, int numEmbeddings);

    /**
     * Sinusoidal embedding of values (N) (I64 or floating) → (N, dim) F32, cos first:
     * {@code [cos(v f_k), sin(v f_k)]}, {@code f_k = exp(-ln(10000) k / half)}, k = 0..half-1,
     * half = dim/2 (dim even). sgm {@code timestep_embedding}; SDXL's timestep (320) and size (256)
     * embeddings. Not differentiable.
     */
    Tensor sinusoidalEmbedding(Scope s, Tensor values, int dim);

    // ---- small types of the contract -----------------------------------------------------------

    /** Elementwise functions of {@link #unary}. */
    enum Unary { EXP, LOG, SQRT, RSQRT, SQUARE, NEG, ABS, SIGN, SIGMOID, TANH, SIN, COS }

    /** GELU variants: the exact erf form and the tanh approximation (ATen's {@code approximate} argument). */
    enum GeluApproximation { NONE, TANH }

    /** Which gradients a backward kernel computes (ATen's {@code output_mask}). */
    record OutputMask(boolean input, boolean weight, boolean bias) {
        public static final OutputMask ALL = new OutputMask(true, true, true);
        public static final OutputMask INPUT_ONLY = new OutputMask(true, false, false);
    }

    /** Gradients of a layer's input, weight and bias; each null when not requested or absent. */
    record LayerGrads(Tensor dx, Tensor dWeight, Tensor dBias) {
    }

    /** {@link #loraAdd}'s sum and the hidden product its backward reads. */
    record LoraResult(Tensor out, Tensor hidden) {
    }

    /** Gradients of {@link #loraAdd}'s x, down and up (null where not asked). */
    record LoraGrads(Tensor dx, Tensor dDown, Tensor dUp) {
    }

    /** Output of a normalisation and the statistics its backward needs. */
    record NormResult(Tensor y, Tensor mean, Tensor rstd) {
    }

    /** Attention output (N, heads, Tq, Dv) and the F32 log-sum-exp (N, heads, Tq). */
    record AttentionResult(Tensor out, Tensor logSumExp) {
    }

    /** Gradients of attention's q, k and v. */
    record AttentionGrads(Tensor dq, Tensor dk, Tensor dv) {
    }
}
