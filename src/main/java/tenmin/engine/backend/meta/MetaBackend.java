package tenmin.engine.backend.meta;

import java.lang.foreign.MemorySegment;
import java.util.List;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * The op contract on shapes alone: every op checks its arguments and returns results of the right shape and
 * dtype, computes nothing and stores nothing. It allocates exactly the tensors the other backends return, so
 * model code run on it holds the same bytes in the same scopes at every moment: its {@link #peakLiveBytes()}
 * is the real peak of a training step's tensor storage, at any model size, in milliseconds and without the
 * memory. Wrapped in an {@link tenmin.engine.api.OpStats} it also counts the step's ops, host transfers and
 * FLOPs. It plans the full-size SDXL step on a machine without a GPU ({@code tenmin bench train --plan}).
 *
 * <p>Host copies return zeros ({@link #toHost}) and random draws consume their generator's counter as the
 * other backends do, so code that branches on values sees a finite loss of 0. Storage per tensor is
 * {@code numel · dtype size} bytes, views share their base's ({@link MemoryMeter}); what a real device adds
 * (allocator rounding and cache, kernel workspaces, a fused kernel's own saved state) is not modelled.
 *
 * <p>{@code device()} is the device being planned for (model code picks dtypes from it); {@code name()} is
 * {@code meta}. Dimension legend as in {@link Backend}.
 */
public final class MetaBackend implements Backend {
    private final Device device;
    private final MemoryMeter memory = new MemoryMeter();
    private long liveTensors;

    /** A shape-only backend that stands in for {@code device}. */
    public MetaBackend(Device device) {
        this.device = device;
    }

    @Override
    public String name() {
        return "meta";
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    public long liveTensors() {
        return liveTensors;
    }

    @Override
    public long liveBytes() {
        return memory.liveBytes();
    }

    @Override
    public long peakLiveBytes() {
        return memory.peakBytes();
    }

    @Override
    public void resetPeakLiveBytes() {
        memory.resetPeak();
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "meta backend (shapes only) for " + device;
    }

    // ---- tensors --------------------------------------------------------------------------------

    private final class MetaTensor extends Tensor {
        private final MemoryMeter.Storage storage;

        MetaTensor(Scope owner, Shape shape, DType dtype, MetaTensor viewOf) {
            super(owner, shape, dtype);
            this.storage = viewOf == null ? memory.allocate(shape.numel() * dtype.sizeBytes()) : memory.share(viewOf.storage);
            liveTensors++;
        }

        @Override
        protected void release() {
            liveTensors--;
            memory.release(storage);
        }
    }

    private Tensor make(Scope s, Shape shape, DType dtype) {
        return new MetaTensor(s, shape, dtype, null);
    }

    private static MetaTensor meta(Tensor t, String op) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": missing tensor");
        }
        t.checkOpen();
        if (!(t instanceof MetaTensor m)) {
            throw new IllegalArgumentException(op + ": tensor " + t.describe() + " does not belong to the meta backend");
        }
        return m;
    }

    private static void require(boolean ok, String op, String what, Tensor... ts) {
        if (!ok) {
            StringBuilder b = new StringBuilder();
            for (Tensor t : ts) {
                if (t != null) {
                    b.append(b.length() == 0 ? "" : ", ").append(t.describe());
                }
            }
            throw new IllegalArgumentException(op + ": " + what + " (" + b + ")");
        }
    }

    /** Checks that the floating operands share one dtype (nothing is promoted) and belong here. */
    private static void sameFloat(String op, Tensor... ts) {
        DType d = null;
        for (Tensor t : ts) {
            if (t == null) {
                continue;
            }
            meta(t, op);
            require(t.dtype().isFloat(), op, "not floating", t);
            require(!t.dtype().isStorageOnly(), op, "stored as " + t.dtype() + ", which no op computes in (cast it first)",
                    t);
            require(d == null || t.dtype() == d, op, "mixed dtypes (cast explicitly)", ts);
            d = t.dtype();
        }
    }

    // ---- creation and host copies ---------------------------------------------------------------

    @Override
    public Tensor full(Scope s, Shape shape, DType dtype, double value) {
        return make(s, shape, dtype);
    }

    @Override
    public Tensor fromHost(Scope s, float[] data, Shape shape, DType dtype) {
        require(dtype.isFloat() && data.length == shape.numel(), "fromHost", data.length + " values for " + shape + " "
                + dtype);
        return make(s, shape, dtype);
    }

    @Override
    public Tensor fromHost(Scope s, long[] data, Shape shape) {
        require(data.length == shape.numel(), "fromHost", data.length + " values for " + shape);
        return make(s, shape, DType.I64);
    }

    @Override
    public Tensor fromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType dtype) {
        require(bytes.byteSize() == shape.numel() * dtype.sizeBytes(), "fromHostBytes", bytes.byteSize()
                + " bytes for " + shape + " " + dtype);
        return make(s, shape, dtype);
    }

    @Override
    public float[] toHost(Tensor t) {
        meta(t, "toHost");
        return new float[t.shape().numelInt()];
    }

    @Override
    public long[] toHostLongs(Tensor t) {
        meta(t, "toHostLongs");
        return new long[t.shape().numelInt()];
    }

    @Override
    public Tensor randn(Scope s, Shape shape, DType dtype, Generator gen) {
        gen.reserve(shape.numel());
        return make(s, shape, dtype);
    }

    @Override
    public Tensor randUniform(Scope s, Shape shape, DType dtype, double low, double high, Generator gen) {
        gen.reserve(shape.numel());
        return make(s, shape, dtype);
    }

    // ---- in place ---------------------------------------------------------------------------------

    @Override
    public void fillInto(Tensor dst, double value) {
        meta(dst, "fillInto");
    }

    @Override
    public void copyInto(Tensor dst, Tensor src) {
        meta(dst, "copyInto");
        meta(src, "copyInto");
        require(dst.numel() == src.numel(), "copyInto", "element counts differ", dst, src);
    }

    @Override
    public void axpyInto(Tensor y, double alpha, Tensor x) {
        sameFloat("axpyInto", y);
        sameFloat("axpyInto", x);
        require(y.shape().equals(x.shape()), "axpyInto", "shapes differ", y, x);
    }

    @Override
    public void scaleInto(Tensor y, double alpha) {
        sameFloat("scaleInto", y);
    }

    // ---- layout ---------------------------------------------------------------------------------

    @Override
    public Tensor reshape(Scope s, Tensor x, Shape shape) {
        require(x.numel() == shape.numel(), "reshape", "cannot view as " + shape, x);
        return new MetaTensor(s, shape, x.dtype(), meta(x, "reshape"));
    }

    @Override
    public Tensor permute(Scope s, Tensor x, int... dims) {
        meta(x, "permute");
        require(dims.length == x.rank(), "permute", "needs " + x.rank() + " dims", x);
        int[] out = new int[dims.length];
        for (int i = 0; i < dims.length; i++) {
            out[i] = x.dim(dims[i]);
        }
        return make(s, Shape.of(out), x.dtype());
    }

    @Override
    public Tensor narrow(Scope s, Tensor x, int dim, int start, int length) {
        meta(x, "narrow");
        int a = x.shape().axis(dim);
        require(start >= 0 && length >= 0 && start + length <= x.dim(a), "narrow", "range out of bounds", x);
        return make(s, x.shape().with(a, length), x.dtype());
    }

    @Override
    public Tensor narrowBackward(Scope s, Tensor dOut, Shape inputShape, int dim, int start) {
        meta(dOut, "narrowBackward");
        return make(s, inputShape, dOut.dtype());
    }

    @Override
    public Tensor cat(Scope s, List<Tensor> xs, int dim) {
        require(!xs.isEmpty(), "cat", "no tensors");
        Tensor first = meta(xs.get(0), "cat");
        int a = first.shape().axis(dim);
        int total = 0;
        for (Tensor x : xs) {
            meta(x, "cat");
            require(x.rank() == first.rank() && x.dtype() == first.dtype(), "cat", "ranks or dtypes differ", first, x);
            for (int i = 0; i < x.rank(); i++) {
                require(i == a || x.dim(i) == first.dim(i), "cat", "sizes differ outside dim " + dim, first, x);
            }
            total += x.dim(a);
        }
        return make(s, first.shape().with(a, total), first.dtype());
    }

    @Override
    public Tensor pad2d(Scope s, Tensor x, int left, int right, int top, int bottom) {
        meta(x, "pad2d");
        return make(s, x.shape().with(-2, x.dim(-2) + top + bottom).with(-1, x.dim(-1) + left + right), x.dtype());
    }

    @Override
    public Tensor expand(Scope s, Tensor x, Shape shape) {
        meta(x, "expand");
        require(shape.equals(Shape.broadcast(x.shape(), shape)), "expand", "cannot broadcast to " + shape, x);
        return make(s, shape, x.dtype());
    }

    @Override
    public Tensor cast(Scope s, Tensor x, DType dtype) {
        meta(x, "cast");
        require(x.dtype().isFloat() == dtype.isFloat(), "cast", "float/integer casts are not supported", x);
        return make(s, x.shape(), dtype);
    }

    // ---- elementwise ------------------------------------------------------------------------------

    private Tensor binary(Scope s, String op, Tensor a, Tensor b) {
        sameFloat(op, a, b);
        Shape out = Shape.broadcast(a.shape(), b.shape());
        require(out != null, op, "shapes do not broadcast", a, b);
        return make(s, out, a.dtype());
    }

    private Tensor same(Scope s, String op, Tensor x) {
        sameFloat(op, x);
        return make(s, x.shape(), x.dtype());
    }

    private Tensor same(Scope s, String op, Tensor dOut, Tensor x) {
        sameFloat(op, dOut, x);
        require(dOut.shape().equals(x.shape()), op, "shapes differ", dOut, x);
        return make(s, x.shape(), x.dtype());
    }

    @Override
    public Tensor add(Scope s, Tensor a, Tensor b, double alpha) {
        return binary(s, "add", a, b);
    }

    @Override
    public Tensor mul(Scope s, Tensor a, Tensor b) {
        return binary(s, "mul", a, b);
    }

    @Override
    public Tensor div(Scope s, Tensor a, Tensor b) {
        return binary(s, "div", a, b);
    }

    @Override
    public Tensor affine(Scope s, Tensor x, double scale, double shift) {
        return same(s, "affine", x);
    }

    @Override
    public Tensor unary(Scope s, Unary op, Tensor x) {
        return same(s, "unary " + op, x);
    }

    @Override
    public Tensor clamp(Scope s, Tensor x, double min, double max) {
        return same(s, "clamp", x);
    }

    @Override
    public Tensor silu(Scope s, Tensor x) {
        return same(s, "silu", x);
    }

    @Override
    public Tensor siluBackward(Scope s, Tensor dOut, Tensor x) {
        return same(s, "siluBackward", dOut, x);
    }

    @Override
    public Tensor gelu(Scope s, Tensor x, GeluApproximation approximation) {
        return same(s, "gelu", x);
    }

    @Override
    public Tensor geluBackward(Scope s, Tensor dOut, Tensor x, GeluApproximation approximation) {
        return same(s, "geluBackward", dOut, x);
    }

    @Override
    public Tensor quickGelu(Scope s, Tensor x) {
        return same(s, "quickGelu", x);
    }

    @Override
    public Tensor quickGeluBackward(Scope s, Tensor dOut, Tensor x) {
        return same(s, "quickGeluBackward", dOut, x);
    }

    // ---- matrix products and convolution ------------------------------------------------------------

    @Override
    public Tensor matmul(Scope s, Tensor a, Tensor b, boolean transA, boolean transB) {
        sameFloat("matmul", a, b);
        require((a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3) && !(a.rank() == 2 && b.rank() == 3),
                "matmul", "expects (M,K)x(K,N), (B,M,K)x(B,K,N) or (B,M,K)x(K,N)", a, b);
        int m = transA ? a.dim(-1) : a.dim(-2);
        int k = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2);
        int n = transB ? b.dim(-2) : b.dim(-1);
        require(k == kb, "matmul", "inner dimensions " + k + " and " + kb + " differ", a, b);
        require(b.rank() == 2 || b.dim(0) == a.dim(0), "matmul", "batch sizes differ", a, b);
        return make(s, a.rank() == 2 ? Shape.of(m, n) : Shape.of(a.dim(0), m, n), a.dtype());
    }

    @Override
    public Tensor linear(Scope s, Tensor x, Tensor weight, Tensor bias) {
        sameFloat("linear", x, weight, bias);
        require(weight.rank() == 2 && x.dim(-1) == weight.dim(1), "linear", "x (.., K) needs weight (N, K)", x, weight);
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == weight.dim(0)), "linear", "bias must be (N)", bias);
        return make(s, x.shape().withLast(weight.dim(0)), x.dtype());
    }

    @Override
    public Tensor convolution(Scope s, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        sameFloat("convolution", x, weight, bias);
        require(x.rank() == 4 && weight.rank() == 4 && x.dim(1) == weight.dim(1), "convolution",
                "expects x (N, C, H, W) and weight (O, C, kH, kW)", x, weight);
        int ho = (x.dim(2) + 2 * padding - weight.dim(2)) / stride + 1;
        int wo = (x.dim(3) + 2 * padding - weight.dim(3)) / stride + 1;
        require(ho > 0 && wo > 0, "convolution", "empty output", x, weight);
        return make(s, Shape.of(x.dim(0), weight.dim(0), ho, wo), x.dtype());
    }

    @Override
    public LayerGrads convolutionBackward(Scope s, Tensor dOut, Tensor x, Tensor weight, int stride, int padding,
                                          OutputMask mask) {
        sameFloat("convolutionBackward", dOut, x, weight);
        return new LayerGrads(mask.input() ? make(s, x.shape(), x.dtype()) : null,
                mask.weight() ? make(s, weight.shape(), x.dtype()) : null,
                mask.bias() ? make(s, Shape.of(weight.dim(0)), x.dtype()) : null);
    }

    // ---- normalisation ------------------------------------------------------------------------------

    @Override
    public NormResult groupNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        sameFloat("groupNorm", x, gamma, beta);
        require(x.rank() >= 2 && x.dim(1) % groups == 0, "groupNorm", "channels not divisible into " + groups
                + " groups", x);
        Tensor y = make(s, x.shape(), x.dtype());
        return new NormResult(y, make(s, Shape.of(x.dim(0), groups), DType.F32),
                make(s, Shape.of(x.dim(0), groups), DType.F32));
    }

    @Override
    public LayerGrads groupNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, int groups,
                                       OutputMask mask) {
        sameFloat("groupNormBackward", dOut, x, gamma);
        return normGrads(s, x, gamma, mask);
    }

    @Override
    public NormResult layerNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, double eps) {
        sameFloat("layerNorm", x, gamma, beta);
        Shape stats = x.shape().withLast(1);
        Tensor y = make(s, x.shape(), x.dtype());
        return new NormResult(y, make(s, stats, DType.F32), make(s, stats, DType.F32));
    }

    @Override
    public LayerGrads layerNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma,
                                        OutputMask mask) {
        sameFloat("layerNormBackward", dOut, x, gamma);
        return normGrads(s, x, gamma, mask);
    }

    private LayerGrads normGrads(Scope s, Tensor x, Tensor gamma, OutputMask mask) {
        boolean affine = gamma != null;
        int c = affine ? gamma.dim(0) : 0;
        return new LayerGrads(mask.input() ? make(s, x.shape(), x.dtype()) : null,
                mask.weight() && affine ? make(s, Shape.of(c), x.dtype()) : null,
                mask.bias() && affine ? make(s, Shape.of(c), x.dtype()) : null);
    }

    // ---- attention ------------------------------------------------------------------------------------

    @Override
    public AttentionResult attention(Scope s, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        sameFloat("attention", q, k, v);
        require(q.rank() == 4 && k.rank() == 4 && v.rank() == 4 && q.dim(-1) == k.dim(-1) && k.dim(2) == v.dim(2),
                "attention", "expects q (N, h, Tq, D), k (N, h, Tk, D), v (N, h, Tk, Dv)", q, k, v);
        Tensor out = make(s, q.shape().withLast(v.dim(-1)), q.dtype());
        return new AttentionResult(out, make(s, Shape.of(q.dim(0), q.dim(1), q.dim(2)), DType.F32));
    }

    @Override
    public AttentionGrads attentionBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, AttentionResult forward,
                                            boolean causal, double scale) {
        sameFloat("attentionBackward", dOut, q, k, v);
        return new AttentionGrads(make(s, q.shape(), q.dtype()), make(s, k.shape(), k.dtype()),
                make(s, v.shape(), v.dtype()));
    }

    /** As the torch backend: the halves are views; gelu of one is stored while the product is made. */
    @Override
    public Tensor geglu(Scope s, Tensor x) {
        sameFloat("geglu", x);
        Shape half = x.shape().withLast(Backend.gegluHalf("geglu", x, null));
        Tensor g = make(s, half, x.dtype());
        Tensor out = make(s, half, x.dtype());
        g.close();
        return out;
    }

    @Override
    public Tensor gegluBackward(Scope s, Tensor dOut, Tensor x) {
        sameFloat("gegluBackward", dOut, x);
        Shape half = x.shape().withLast(Backend.gegluHalf("gegluBackward", x, dOut));
        Tensor[] temps = {make(s, half, x.dtype()), make(s, half, x.dtype()), make(s, half, x.dtype()),
            make(s, half, x.dtype())};                                           // gelu(b), da, dg, db
        Tensor dx = make(s, x.shape(), x.dtype());
        for (Tensor t : temps) {
            t.close();
        }
        return dx;
    }

    /** As the torch backend: one product into the merged weight. */
    @Override
    public Tensor loraMerge(Scope s, Tensor weight, Tensor down, Tensor up, double scale) {
        sameFloat("loraMerge", weight, down, up);
        Backend.checkLoraMerge(weight, down, up);
        return make(s, weight.shape(), weight.dtype());
    }

    /** As the torch backend: the hidden product and the sum are stored, no branch in between. */
    @Override
    public LoraResult loraAdd(Scope s, Tensor y, Tensor x, Tensor down, Tensor up, double scale) {
        sameFloat("loraAdd", y, x, down, up);
        Backend.checkLora("loraAdd", y, x, down, up);
        Tensor h = make(s, x.shape().withLast(down.dim(0)), x.dtype());
        return new LoraResult(make(s, y.shape(), y.dtype()), h);
    }

    @Override
    public LoraGrads loraAddBackward(Scope s, Tensor dOut, Tensor x, Tensor hidden, Tensor down, Tensor up,
                                     double scale, boolean needX, boolean needDown, boolean needUp) {
        sameFloat("loraAddBackward", dOut, x, hidden, down, up);
        Tensor dh = make(s, hidden.shape(), hidden.dtype());                  // the hidden's gradient, while it runs
        LoraGrads g = new LoraGrads(needX ? make(s, x.shape(), x.dtype()) : null,
                needDown ? make(s, down.shape(), down.dtype()) : null, needUp ? make(s, up.shape(), up.dtype()) : null);
        dh.close();
        return g;
    }

    /** As the torch backend: the heads are views, only the merged output and the log-sum-exp are stored. */
    @Override
    public AttentionResult attentionHeads(Scope s, Tensor q, Tensor k, Tensor v, int heads, boolean causal,
                                          double scale) {
        sameFloat("attentionHeads", q, k, v);
        Backend.checkHeads("attentionHeads", heads, q, k, v);
        Tensor out = make(s, q.shape().withLast(v.dim(-1)), q.dtype());
        return new AttentionResult(out, make(s, Shape.of(q.dim(0), heads, q.dim(1)), DType.F32));
    }

    @Override
    public AttentionGrads attentionHeadsBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, int heads,
                                                 AttentionResult forward, boolean causal, double scale) {
        sameFloat("attentionHeadsBackward", dOut, q, k, v);
        Backend.checkHeads("attentionHeadsBackward", heads, q, k, v);
        return new AttentionGrads(make(s, q.shape(), q.dtype()), make(s, k.shape(), k.dtype()),
                make(s, v.shape(), v.dtype()));
    }

    // ---- resampling ---------------------------------------------------------------------------------

    @Override
    public Tensor upsampleNearest2x(Scope s, Tensor x) {
        sameFloat("upsampleNearest2x", x);
        require(x.rank() == 4, "upsampleNearest2x", "expects (N, C, H, W)", x);
        return make(s, Shape.of(x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)), x.dtype());
    }

    @Override
    public Tensor upsampleNearest2xBackward(Scope s, Tensor dOut) {
        sameFloat("upsampleNearest2xBackward", dOut);
        require(dOut.rank() == 4 && dOut.dim(2) % 2 == 0 && dOut.dim(3) % 2 == 0, "upsampleNearest2xBackward",
                "expects (N, C, 2H, 2W)", dOut);
        return make(s, Shape.of(dOut.dim(0), dOut.dim(1), dOut.dim(2) / 2, dOut.dim(3) / 2), dOut.dtype());
    }

    // ---- reductions and loss ------------------------------------------------------------------------

    @Override
    public Tensor sum(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim);
    }

    @Override
    public Tensor mean(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim);
    }

    private Tensor reduce(Scope s, Tensor x, int[] dims, boolean keepDim) {
        sameFloat("reduce", x);
        boolean[] reduced = new boolean[x.rank()];
        if (dims.length == 0) {
            java.util.Arrays.fill(reduced, true);
        }
        for (int d : dims) {
            reduced[x.shape().axis(d)] = true;
        }
        int[] out = new int[x.rank()];
        int kept = 0;
        for (int i = 0; i < x.rank(); i++) {
            if (keepDim) {
                out[kept++] = reduced[i] ? 1 : x.dim(i);
            } else if (!reduced[i]) {
                out[kept++] = x.dim(i);
            }
        }
        return make(s, Shape.of(java.util.Arrays.copyOf(out, kept)), x.dtype());
    }

    @Override
    public Tensor mseLoss(Scope s, Tensor pred, Tensor target) {
        sameFloat("mseLoss", pred, target);
        require(pred.shape().equals(target.shape()), "mseLoss", "shapes differ", pred, target);
        return make(s, Shape.scalar(), pred.dtype());
    }

    @Override
    public Tensor mseLossBackward(Scope s, Tensor dLoss, Tensor pred, Tensor target) {
        sameFloat("mseLossBackward", dLoss, pred, target);
        return make(s, pred.shape(), pred.dtype());
    }

    // ---- embeddings ---------------------------------------------------------------------------------

    @Override
    public Tensor embedding(Scope s, Tensor weight, Tensor ids) {
        sameFloat("embedding", weight);
        require(weight.rank() == 2 && meta(ids, "embedding").dtype() == DType.I64, "embedding",
                "expects weight (V, D) and i64 ids", weight, ids);
        int[] dims = java.util.Arrays.copyOf(ids.shape().dims(), ids.rank() + 1);
        dims[ids.rank()] = weight.dim(1);
        return make(s, Shape.of(dims), weight.dtype());
    }

    @Override
    public Tensor embeddingBackward(Scope s, Tensor dOut, Tensor ids, int numEmbeddings) {
        sameFloat("embeddingBackward", dOut);
        return make(s, Shape.of(numEmbeddings, dOut.dim(-1)), dOut.dtype());
    }

    @Override
    public Tensor sinusoidalEmbedding(Scope s, Tensor values, int dim) {
        meta(values, "sinusoidalEmbedding");
        require(values.rank() == 1 && dim > 0 && dim % 2 == 0, "sinusoidalEmbedding", "expects values (N) and an even dim",
                values);
        return make(s, Shape.of(values.dim(0), dim), DType.F32);
    }
}
