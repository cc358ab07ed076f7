package tenmin.engine.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Half;

/**
 * The pure-Java backend: fp32 arithmetic on heap arrays, a fixed thread pool, Vector API GEMM.
 *
 * <p>bf16/fp16 tensors hold fp32 values rounded to their precision; every op computes in fp32 and
 * rounds its result to the output dtype, so the GPU's storage precision is emulated. Random numbers
 * are counter based ({@link CounterRandom}). See {@link Backend} for the contract of each op; this
 * class checks arguments and dispatches to the kernel classes.
 */
public final class CpuBackend implements Backend {
    private final Parallel par;
    private final AtomicLong liveTensors = new AtomicLong();
    private final AtomicLong liveBytes = new AtomicLong();

    /** A backend using every available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** A backend with {@code threads} worker threads (the caller's thread counts as one). */
    public CpuBackend(int threads) {
        this.par = new Parallel(threads);
    }

    /** Number of threads used by kernels. */
    public int threads() {
        return par.threads();
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public long liveTensors() {
        return liveTensors.get();
    }

    @Override
    public long liveBytes() {
        return liveBytes.get();
    }

    @Override
    public void close() {
        par.close();
    }

    void allocated(CpuTensor t) {
        liveTensors.incrementAndGet();
        liveBytes.addAndGet(t.ownedBytes());
    }

    void released(CpuTensor t) {
        liveTensors.decrementAndGet();
        liveBytes.addAndGet(-t.ownedBytes());
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static CpuTensor cpu(Tensor t, String op) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": missing tensor");
        }
        t.checkOpen();
        if (!(t instanceof CpuTensor c)) {
            throw new IllegalArgumentException(op + ": tensor " + t.describe() + " belongs to backend "
                    + t.backend().name() + ", not cpu");
        }
        return c;
    }

    private static float[] f(Tensor t, String op) {
        return cpu(t, op).data();
    }

    private static float[] fOrNull(Tensor t, String op) {
        return t == null ? null : f(t, op);
    }

    private CpuTensor newFloat(Scope s, Shape shape, DType dtype) {
        if (!dtype.isFloat()) {
            throw new IllegalArgumentException("expected a floating dtype, got " + dtype);
        }
        return new CpuTensor(this, s, shape, dtype, new float[shape.numelInt()], null, false);
    }

    /** Rounds the result to its storage precision and returns it. */
    private static Tensor done(CpuTensor t) {
        if (t.dtype() != DType.F32) {
            float[] d = t.data();
            Elementwise.round(d, d.length, t.dtype());
        }
        return t;
    }

    private static void sameDtype(String op, Tensor... ts) {
        DType d = null;
        for (Tensor t : ts) {
            if (t == null) {
                continue;
            }
            if (!t.dtype().isFloat()) {
                throw new IllegalArgumentException(op + ": " + t.describe() + " is not floating");
            }
            if (d != null && t.dtype() != d) {
                throw new IllegalArgumentException(op + ": dtypes differ (" + Arrays.toString(describeAll(ts))
                        + "); cast explicitly");
            }
            d = t.dtype();
        }
    }

    private static String[] describeAll(Tensor... ts) {
        String[] out = new String[ts.length];
        for (int i = 0; i < ts.length; i++) {
            out[i] = ts[i] == null ? "null" : ts[i].describe();
        }
        return out;
    }

    private static void sameShape(String op, Tensor a, Tensor b) {
        if (!a.shape().equals(b.shape())) {
            throw new IllegalArgumentException(op + ": shapes differ: " + a.describe() + " vs " + b.describe());
        }
    }

    private static void require(boolean ok, String op, String what, Tensor... ts) {
        if (!ok) {
            throw new IllegalArgumentException(op + ": " + what + " (" + String.join(", ", describeAll(ts)) + ")");
        }
    }

    // ---- creation and host copies --------------------------------------------------------------

    @Override
    public Tensor full(Scope s, Shape shape, DType dtype, double value) {
        if (dtype == DType.I64) {
            long[] l = new long[shape.numelInt()];
            Arrays.fill(l, (long) value);
            return new CpuTensor(this, s, shape, dtype, null, l, false);
        }
        CpuTensor t = newFloat(s, shape, dtype);
        if (value != 0) {
            Arrays.fill(t.data(), (float) value);
        }
        return done(t);
    }

    @Override
    public Tensor fromHost(Scope s, float[] data, Shape shape, DType dtype) {
        if (data.length != shape.numel()) {
            throw new IllegalArgumentException("fromHost: " + data.length + " values for shape " + shape);
        }
        CpuTensor t = newFloat(s, shape, dtype);
        System.arraycopy(data, 0, t.data(), 0, data.length);
        return done(t);
    }

    @Override
    public Tensor fromHost(Scope s, long[] data, Shape shape) {
        if (data.length != shape.numel()) {
            throw new IllegalArgumentException("fromHost: " + data.length + " values for shape " + shape);
        }
        return new CpuTensor(this, s, shape, DType.I64, null, data.clone(), false);
    }

    @Override
    public Tensor fromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType dtype) {
        int n = shape.numelInt();
        long need = (long) n * dtype.sizeBytes();
        if (bytes.byteSize() != need) {
            throw new IllegalArgumentException("fromHostBytes: " + bytes.byteSize() + " bytes for " + shape + " "
                    + dtype + " (expected " + need + ")");
        }
        if (dtype == DType.I64) {
            long[] l = new long[n];
            MemorySegment.copy(bytes, ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, l, 0, n);
            return new CpuTensor(this, s, shape, dtype, null, l, false);
        }
        CpuTensor t = newFloat(s, shape, dtype);
        float[] d = t.data();
        if (dtype == DType.F32) {
            MemorySegment.copy(bytes, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, d, 0, n);
        } else {
            short[] h = new short[n];
            MemorySegment.copy(bytes, ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, h, 0, n);
            for (int i = 0; i < n; i++) {
                d[i] = dtype == DType.BF16 ? Half.bf16ToF32(h[i]) : Half.f16ToF32(h[i]);
            }
        }
        return t;
    }

    @Override
    public float[] toHost(Tensor t) {
        return f(t, "toHost").clone();
    }

    @Override
    public long[] toHostLongs(Tensor t) {
        return cpu(t, "toHostLongs").longs().clone();
    }

    @Override
    public Tensor randn(Scope s, Shape shape, DType dtype, Generator gen) {
        CpuTensor t = newFloat(s, shape, dtype);
        float[] d = t.data();
        long first = gen.reserve(d.length);
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) CounterRandom.normal(gen.seed(), first + i);
        }
        return done(t);
    }

    @Override
    public Tensor randUniform(Scope s, Shape shape, DType dtype, double low, double high, Generator gen) {
        CpuTensor t = newFloat(s, shape, dtype);
        float[] d = t.data();
        long first = gen.reserve(d.length);
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (low + (high - low) * CounterRandom.uniform(gen.seed(), first + i));
        }
        return done(t);
    }

    // ---- in place ------------------------------------------------------------------------------

    @Override
    public void fillInto(Tensor dst, double value) {
        CpuTensor t = cpu(dst, "fillInto");
        if (t.dtype() == DType.I64) {
            Arrays.fill(t.longs(), (long) value);
        } else {
            Arrays.fill(t.data(), (float) value);
            done(t);
        }
    }

    @Override
    public void copyInto(Tensor dst, Tensor src) {
        CpuTensor d = cpu(dst, "copyInto");
        CpuTensor s = cpu(src, "copyInto");
        require(d.numel() == s.numel(), "copyInto", "element counts differ", dst, src);
        if (d.dtype() == DType.I64 || s.dtype() == DType.I64) {
            require(d.dtype() == s.dtype(), "copyInto", "integer and floating tensors do not mix", dst, src);
            System.arraycopy(s.longs(), 0, d.longs(), 0, (int) s.numel());
            return;
        }
        System.arraycopy(s.data(), 0, d.data(), 0, (int) s.numel());
        done(d);
    }

    @Override
    public void axpyInto(Tensor y, double alpha, Tensor x) {
        sameDtype("axpyInto", y, x);
        sameShape("axpyInto", y, x);
        float[] yd = f(y, "axpyInto");
        float[] xd = f(x, "axpyInto");
        float a = (float) alpha;
        for (int i = 0; i < yd.length; i++) {
            yd[i] += a * xd[i];
        }
        done((CpuTensor) y);
    }

    @Override
    public void scaleInto(Tensor y, double alpha) {
        float[] yd = f(y, "scaleInto");
        float a = (float) alpha;
        for (int i = 0; i < yd.length; i++) {
            yd[i] *= a;
        }
        done((CpuTensor) y);
    }

    // ---- layout --------------------------------------------------------------------------------

    @Override
    public Tensor reshape(Scope s, Tensor x, Shape shape) {
        CpuTensor c = cpu(x, "reshape");
        require(shape.numel() == x.numel(), "reshape", "cannot view as " + shape, x);
        boolean isFloat = x.dtype().isFloat();
        return new CpuTensor(this, s, shape, x.dtype(), isFloat ? c.data() : null, isFloat ? null : c.longs(), true);
    }

    @Override
    public Tensor permute(Scope s, Tensor x, int... dims) {
        CpuTensor c = cpu(x, "permute");
        Shape in = x.shape();
        require(dims.length == in.rank(), "permute", "order " + Arrays.toString(dims) + " has the wrong length", x);
        int[] perm = new int[dims.length];
        int[] outDims = new int[dims.length];
        boolean[] seen = new boolean[dims.length];
        for (int i = 0; i < dims.length; i++) {
            perm[i] = in.axis(dims[i]);
            require(!seen[perm[i]], "permute", "order " + Arrays.toString(dims) + " repeats a dimension", x);
            seen[perm[i]] = true;
            outDims[i] = in.dim(perm[i]);
        }
        Shape out = Shape.of(outDims);
        if (x.dtype() == DType.I64) {
            long[] o = new long[out.numelInt()];
            Layouts.permute(c.longs(), in, perm, o);
            return new CpuTensor(this, s, out, DType.I64, null, o, false);
        }
        CpuTensor t = newFloat(s, out, x.dtype());
        Layouts.permute(c.data(), in, perm, t.data());
        return t;
    }

    @Override
    public Tensor narrow(Scope s, Tensor x, int dim, int start, int length) {
        CpuTensor c = cpu(x, "narrow");
        int axis = x.shape().axis(dim);
        require(start >= 0 && length >= 0 && start + length <= x.dim(axis), "narrow",
                "range [" + start + ", " + (start + length) + ") outside dimension " + dim, x);
        Shape out = x.shape().with(axis, length);
        if (x.dtype() == DType.I64) {
            long[] o = new long[out.numelInt()];
            Layouts.block(c.longs(), x.shape(), axis, start, length, o, true);
            return new CpuTensor(this, s, out, DType.I64, null, o, false);
        }
        CpuTensor t = newFloat(s, out, x.dtype());
        Layouts.block(c.data(), x.shape(), axis, start, length, t.data(), true);
        return t;
    }

    @Override
    public Tensor narrowBackward(Scope s, Tensor dOut, Shape inputShape, int dim, int start) {
        float[] g = f(dOut, "narrowBackward");
        int axis = inputShape.axis(dim);
        int length = dOut.dim(axis);
        require(dOut.shape().equals(inputShape.with(axis, length)) && start >= 0 && start + length <= inputShape.dim(axis),
                "narrowBackward", "gradient does not fit " + inputShape + " at " + start + " of dim " + dim, dOut);
        CpuTensor t = newFloat(s, inputShape, dOut.dtype());
        Layouts.block(t.data(), inputShape, axis, start, length, g, false);
        return t;
    }

    @Override
    public Tensor cat(Scope s, List<Tensor> xs, int dim) {
        require(!xs.isEmpty(), "cat", "no tensors");
        Tensor first = xs.get(0);
        int axis = first.shape().axis(dim);
        int total = 0;
        for (Tensor x : xs) {
            cpu(x, "cat");
            require(x.rank() == first.rank() && x.dtype() == first.dtype()
                    && x.shape().with(axis, 1).equals(first.shape().with(axis, 1)),
                    "cat", "shapes or dtypes differ outside dimension " + dim, first, x);
            total += x.dim(axis);
        }
        Shape out = first.shape().with(axis, total);
        boolean isLong = first.dtype() == DType.I64;
        CpuTensor t = isLong ? new CpuTensor(this, s, out, DType.I64, null, new long[out.numelInt()], false)
                : newFloat(s, out, first.dtype());
        int offset = 0;
        for (Tensor x : xs) {
            CpuTensor c = (CpuTensor) x;
            Layouts.block(isLong ? t.longs() : t.data(), out, axis, offset, x.dim(axis), isLong ? c.longs() : c.data(), false);
            offset += x.dim(axis);
        }
        return t;
    }

    @Override
    public Tensor pad2d(Scope s, Tensor x, int left, int right, int top, int bottom) {
        float[] d = f(x, "pad2d");
        require(x.rank() >= 2 && left >= 0 && right >= 0 && top >= 0 && bottom >= 0, "pad2d",
                "needs rank >= 2 and non-negative padding", x);
        int h = x.dim(-2) + top + bottom;
        int w = x.dim(-1) + left + right;
        CpuTensor t = newFloat(s, x.shape().with(-2, h).with(-1, w), x.dtype());
        Layouts.pad2d(d, x.shape(), left, top, t.data(), h, w);
        return t;
    }

    @Override
    public Tensor expand(Scope s, Tensor x, Shape shape) {
        float[] d = f(x, "expand");
        Shape b = Elementwise.broadcastShape(x.shape(), shape);
        require(b != null && b.equals(shape), "expand", "cannot broadcast to " + shape, x);
        CpuTensor t = newFloat(s, shape, x.dtype());
        Elementwise.expand(d, x.shape(), t.data(), shape);
        return t;
    }

    @Override
    public Tensor cast(Scope s, Tensor x, DType dtype) {
        CpuTensor c = cpu(x, "cast");
        if (dtype == DType.I64) {
            require(x.dtype() == DType.I64, "cast", "floating to integer casts are not supported", x);
            return new CpuTensor(this, s, x.shape(), dtype, null, c.longs().clone(), false);
        }
        CpuTensor t = newFloat(s, x.shape(), dtype);
        float[] o = t.data();
        if (x.dtype() == DType.I64) {
            long[] l = c.longs();
            for (int i = 0; i < o.length; i++) {
                o[i] = (float) l[i];
            }
        } else {
            System.arraycopy(c.data(), 0, o, 0, o.length);
        }
        return done(t);
    }

    // ---- elementwise ---------------------------------------------------------------------------

    private Tensor binary(Scope s, Elementwise.Binary op, Tensor a, Tensor b, double alpha, String name) {
        sameDtype(name, a, b);
        float[] ad = f(a, name);
        float[] bd = f(b, name);
        Shape out = Elementwise.broadcastShape(a.shape(), b.shape());
        require(out != null, name, "shapes do not broadcast", a, b);
        CpuTensor t = newFloat(s, out, a.dtype());
        if (out.numel() > 0) {
            Elementwise.binary(op, ad, Elementwise.broadcastStrides(a.shape(), out), bd,
                    Elementwise.broadcastStrides(b.shape(), out), (float) alpha, t.data(), out);
        }
        return done(t);
    }

    @Override
    public Tensor add(Scope s, Tensor a, Tensor b, double alpha) {
        return binary(s, Elementwise.Binary.ADD, a, b, alpha, "add");
    }

    @Override
    public Tensor mul(Scope s, Tensor a, Tensor b) {
        return binary(s, Elementwise.Binary.MUL, a, b, 1.0, "mul");
    }

    @Override
    public Tensor div(Scope s, Tensor a, Tensor b) {
        return binary(s, Elementwise.Binary.DIV, a, b, 1.0, "div");
    }

    @Override
    public Tensor affine(Scope s, Tensor x, double scale, double shift) {
        float[] d = f(x, "affine");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.affine(d, (float) scale, (float) shift, t.data(), d.length);
        return done(t);
    }

    @Override
    public Tensor unary(Scope s, Unary op, Tensor x) {
        float[] d = f(x, "unary");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.unary(op, d, t.data(), d.length);
        return done(t);
    }

    @Override
    public Tensor clamp(Scope s, Tensor x, double min, double max) {
        float[] d = f(x, "clamp");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.clamp(d, (float) min, (float) max, t.data(), d.length);
        return done(t);
    }

    // ---- activations ---------------------------------------------------------------------------

    @Override
    public Tensor silu(Scope s, Tensor x) {
        float[] d = f(x, "silu");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.silu(d, t.data(), d.length);
        return done(t);
    }

    @Override
    public Tensor siluBackward(Scope s, Tensor dOut, Tensor x) {
        checkGradPair("siluBackward", dOut, x);
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.siluBackward(f(dOut, "siluBackward"), f(x, "siluBackward"), t.data(), t.data().length);
        return done(t);
    }

    @Override
    public Tensor gelu(Scope s, Tensor x, GeluApproximation approximation) {
        float[] d = f(x, "gelu");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.gelu(d, t.data(), d.length, approximation);
        return done(t);
    }

    @Override
    public Tensor geluBackward(Scope s, Tensor dOut, Tensor x, GeluApproximation approximation) {
        checkGradPair("geluBackward", dOut, x);
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.geluBackward(f(dOut, "geluBackward"), f(x, "geluBackward"), t.data(), t.data().length, approximation);
        return done(t);
    }

    @Override
    public Tensor quickGelu(Scope s, Tensor x) {
        float[] d = f(x, "quickGelu");
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.quickGelu(d, t.data(), d.length);
        return done(t);
    }

    @Override
    public Tensor quickGeluBackward(Scope s, Tensor dOut, Tensor x) {
        checkGradPair("quickGeluBackward", dOut, x);
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        Elementwise.quickGeluBackward(f(dOut, "quickGeluBackward"), f(x, "quickGeluBackward"), t.data(), t.data().length);
        return done(t);
    }

    private static void checkGradPair(String op, Tensor dOut, Tensor x) {
        sameDtype(op, dOut, x);
        sameShape(op, dOut, x);
    }

    // ---- matrix products -----------------------------------------------------------------------

    @Override
    public Tensor matmul(Scope s, Tensor a, Tensor b, boolean transA, boolean transB) {
        sameDtype("matmul", a, b);
        float[] ad = f(a, "matmul");
        float[] bd = f(b, "matmul");
        require((a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3) && !(a.rank() == 2 && b.rank() == 3),
                "matmul", "operands must be (M, K)·(K, N), (B, M, K)·(B, K, N) or (B, M, K)·(K, N)", a, b);
        int batch = a.rank() == 3 ? a.dim(0) : 1;
        require(b.rank() == 2 || b.dim(0) == batch, "matmul", "batch sizes differ", a, b);
        int m = transA ? a.dim(-1) : a.dim(-2);
        int k = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2);
        int n = transB ? b.dim(-2) : b.dim(-1);
        require(k == kb, "matmul", "inner sizes differ (" + k + " vs " + kb + ")", a, b);
        Shape out = a.rank() == 3 ? Shape.of(batch, m, n) : Shape.of(m, n);
        CpuTensor t = newFloat(s, out, a.dtype());
        float[] c = t.data();
        for (int i = 0; i < batch; i++) {
            int bOff = b.rank() == 3 ? i * k * n : 0;
            Gemm.multiply(par, ad, i * m * k, transA, bd, bOff, transB, c, i * m * n, m, n, k, false);
        }
        return done(t);
    }

    @Override
    public Tensor linear(Scope s, Tensor x, Tensor weight, Tensor bias) {
        sameDtype("linear", x, weight, bias);
        float[] xd = f(x, "linear");
        float[] wd = f(weight, "linear");
        float[] bd = fOrNull(bias, "linear");
        require(x.rank() >= 1 && weight.rank() == 2 && x.dim(-1) == weight.dim(1), "linear",
                "expects x (.., K) and weight (N, K)", x, weight);
        int n = weight.dim(0);
        int k = weight.dim(1);
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == n), "linear", "bias must be (N)", weight, bias);
        int m = (int) (x.numel() / k);
        CpuTensor t = newFloat(s, x.shape().withLast(n), x.dtype());
        float[] y = t.data();
        Gemm.multiply(par, xd, 0, false, wd, 0, true, y, 0, m, n, k, false);
        if (bd != null) {
            for (int r = 0; r < m; r++) {
                for (int j = 0; j < n; j++) {
                    y[r * n + j] += bd[j];
                }
            }
        }
        return done(t);
    }

    // ---- convolution ---------------------------------------------------------------------------

    private static Convolution.Geometry geometry(Tensor x, Tensor weight, int stride, int padding, String op) {
        require(x.rank() == 4 && weight.rank() == 4 && x.dim(1) == weight.dim(1) && weight.dim(2) == weight.dim(3),
                op, "expects x (N, C, H, W) and a square weight (O, C, k, k)", x, weight);
        require(stride >= 1 && padding >= 0, op, "stride must be >= 1 and padding >= 0", x);
        Convolution.Geometry g = new Convolution.Geometry(x.dim(0), x.dim(1), x.dim(2), x.dim(3), weight.dim(0),
                weight.dim(2), stride, padding);
        require(g.outH() >= 1 && g.outW() >= 1, op, "kernel larger than the padded input", x, weight);
        return g;
    }

    @Override
    public Tensor convolution(Scope s, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        sameDtype("convolution", x, weight, bias);
        Convolution.Geometry g = geometry(x, weight, stride, padding, "convolution");
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == g.o()), "convolution", "bias must be (O)", weight, bias);
        CpuTensor t = newFloat(s, Shape.of(g.n(), g.o(), g.outH(), g.outW()), x.dtype());
        Convolution.forward(par, g, f(x, "convolution"), f(weight, "convolution"), fOrNull(bias, "convolution"), t.data());
        return done(t);
    }

    @Override
    public LayerGrads convolutionBackward(Scope s, Tensor dOut, Tensor x, Tensor weight, int stride, int padding,
                                          OutputMask mask) {
        sameDtype("convolutionBackward", dOut, x, weight);
        Convolution.Geometry g = geometry(x, weight, stride, padding, "convolutionBackward");
        require(dOut.shape().equals(Shape.of(g.n(), g.o(), g.outH(), g.outW())), "convolutionBackward",
                "gradient shape does not match the output", dOut, x, weight);
        CpuTensor dx = mask.input() ? newFloat(s, x.shape(), x.dtype()) : null;
        CpuTensor dw = mask.weight() ? newFloat(s, weight.shape(), x.dtype()) : null;
        CpuTensor db = mask.bias() ? newFloat(s, Shape.of(g.o()), x.dtype()) : null;
        Convolution.backward(par, g, f(dOut, "convolutionBackward"), f(x, "convolutionBackward"),
                f(weight, "convolutionBackward"), dx == null ? null : dx.data(), dw == null ? null : dw.data(),
                db == null ? null : db.data());
        return new LayerGrads(dx == null ? null : done(dx), dw == null ? null : done(dw), db == null ? null : done(db));
    }

    // ---- normalisation -------------------------------------------------------------------------

    @Override
    public NormResult groupNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        sameDtype("groupNorm", x, gamma, beta);
        require(x.rank() >= 2 && groups >= 1 && x.dim(1) % groups == 0, "groupNorm",
                "channels must divide into " + groups + " groups", x);
        int c = x.dim(1);
        checkAffine("groupNorm", c, gamma, beta);
        int n = x.dim(0);
        int spatial = (int) x.shape().numel(2, x.rank());
        int rows = n * groups;
        int m = c / groups * spatial;
        CpuTensor y = newFloat(s, x.shape(), x.dtype());
        CpuTensor mean = newFloat(s, Shape.of(n, groups), DType.F32);
        CpuTensor rstd = newFloat(s, Shape.of(n, groups), DType.F32);
        Norms.forward(par, f(x, "groupNorm"), rows, m, fOrNull(gamma, "groupNorm"), fOrNull(beta, "groupNorm"),
                Norms.groupChannels(groups, c, spatial), eps, y.data(), mean.data(), rstd.data());
        return new NormResult(done(y), mean, rstd);
    }

    @Override
    public LayerGrads groupNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, int groups,
                                        OutputMask mask) {
        checkGradPair("groupNormBackward", dOut, x);
        int c = x.dim(1);
        int spatial = (int) x.shape().numel(2, x.rank());
        int rows = x.dim(0) * groups;
        int m = c / groups * spatial;
        return normBackward(s, dOut, x, forward, gamma, mask, rows, m, c, Norms.groupChannels(groups, c, spatial),
                "groupNormBackward");
    }

    @Override
    public NormResult layerNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, double eps) {
        sameDtype("layerNorm", x, gamma, beta);
        require(x.rank() >= 1, "layerNorm", "needs at least one dimension", x);
        int c = x.dim(-1);
        checkAffine("layerNorm", c, gamma, beta);
        int rows = (int) (x.numel() / Math.max(1, c));
        CpuTensor y = newFloat(s, x.shape(), x.dtype());
        Shape stats = x.shape().withLast(1);
        CpuTensor mean = newFloat(s, stats, DType.F32);
        CpuTensor rstd = newFloat(s, stats, DType.F32);
        Norms.forward(par, f(x, "layerNorm"), rows, c, fOrNull(gamma, "layerNorm"), fOrNull(beta, "layerNorm"),
                Norms.lastDimChannels(), eps, y.data(), mean.data(), rstd.data());
        return new NormResult(done(y), mean, rstd);
    }

    @Override
    public LayerGrads layerNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma,
                                        OutputMask mask) {
        checkGradPair("layerNormBackward", dOut, x);
        int c = x.dim(-1);
        int rows = (int) (x.numel() / Math.max(1, c));
        return normBackward(s, dOut, x, forward, gamma, mask, rows, c, c, Norms.lastDimChannels(), "layerNormBackward");
    }

    private LayerGrads normBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, OutputMask mask,
                                    int rows, int m, int channels, Norms.ChannelMap map, String op) {
        float[] dy = f(dOut, op);
        float[] xd = f(x, op);
        float[] mean = f(forward.mean(), op);
        float[] rstd = f(forward.rstd(), op);
        CpuTensor dx = mask.input() ? newFloat(s, x.shape(), x.dtype()) : null;
        CpuTensor dg = mask.weight() ? newFloat(s, Shape.of(channels), x.dtype()) : null;
        CpuTensor dbeta = mask.bias() ? newFloat(s, Shape.of(channels), x.dtype()) : null;
        if (dx != null) {
            Norms.backwardInput(par, dy, xd, rows, m, mean, rstd, fOrNull(gamma, op), map, dx.data());
        }
        if (dg != null || dbeta != null) {
            Norms.backwardParams(dy, xd, rows, m, mean, rstd, map, channels, dg == null ? null : dg.data(),
                    dbeta == null ? null : dbeta.data());
        }
        return new LayerGrads(dx == null ? null : done(dx), dg == null ? null : done(dg), dbeta == null ? null : done(dbeta));
    }

    private static void checkAffine(String op, int c, Tensor gamma, Tensor beta) {
        require(gamma == null || (gamma.rank() == 1 && gamma.dim(0) == c), op, "gamma must be (" + c + ")", gamma);
        require(beta == null || (beta.rank() == 1 && beta.dim(0) == c), op, "beta must be (" + c + ")", beta);
    }

    // ---- attention -----------------------------------------------------------------------------

    private static Attention.Dims attentionDims(Tensor q, Tensor k, Tensor v, String op) {
        require(q.rank() == 4 && k.rank() == 4 && v.rank() == 4, op, "expects (N, heads, T, D) tensors", q, k, v);
        require(q.dim(0) == k.dim(0) && q.dim(1) == k.dim(1) && k.dim(0) == v.dim(0) && k.dim(1) == v.dim(1)
                && q.dim(3) == k.dim(3) && k.dim(2) == v.dim(2), op, "shapes do not match", q, k, v);
        return new Attention.Dims(q.dim(0) * q.dim(1), q.dim(2), k.dim(2), q.dim(3), v.dim(3));
    }

    @Override
    public AttentionResult attention(Scope s, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        sameDtype("attention", q, k, v);
        Attention.Dims m = attentionDims(q, k, v, "attention");
        require(!causal || m.tq() <= m.tk(), "attention", "causal attention needs Tq <= Tk", q, k);
        CpuTensor out = newFloat(s, Shape.of(q.dim(0), q.dim(1), m.tq(), m.dv()), q.dtype());
        CpuTensor lse = newFloat(s, Shape.of(q.dim(0), q.dim(1), m.tq()), DType.F32);
        Attention.forward(par, m, f(q, "attention"), f(k, "attention"), f(v, "attention"), causal, (float) scale,
                out.data(), lse.data());
        return new AttentionResult(done(out), lse);
    }

    @Override
    public AttentionGrads attentionBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, AttentionResult forward,
                                            boolean causal, double scale) {
        sameDtype("attentionBackward", dOut, q, k, v);
        Attention.Dims m = attentionDims(q, k, v, "attentionBackward");
        sameShape("attentionBackward", dOut, forward.out());
        CpuTensor dq = newFloat(s, q.shape(), q.dtype());
        CpuTensor dk = newFloat(s, k.shape(), k.dtype());
        CpuTensor dv = newFloat(s, v.shape(), v.dtype());
        Attention.backward(par, m, f(dOut, "attentionBackward"), f(q, "attentionBackward"), f(k, "attentionBackward"),
                f(v, "attentionBackward"), f(forward.out(), "attentionBackward"), f(forward.logSumExp(), "attentionBackward"),
                causal, (float) scale, dq.data(), dk.data(), dv.data());
        return new AttentionGrads(done(dq), done(dk), done(dv));
    }

    // ---- resampling ----------------------------------------------------------------------------

    @Override
    public Tensor upsampleNearest2x(Scope s, Tensor x) {
        float[] d = f(x, "upsampleNearest2x");
        require(x.rank() == 4, "upsampleNearest2x", "expects (N, C, H, W)", x);
        int h = x.dim(2);
        int w = x.dim(3);
        CpuTensor t = newFloat(s, Shape.of(x.dim(0), x.dim(1), 2 * h, 2 * w), x.dtype());
        Layouts.upsample2x(d, x.dim(0) * x.dim(1), h, w, t.data());
        return t;
    }

    @Override
    public Tensor upsampleNearest2xBackward(Scope s, Tensor dOut) {
        float[] d = f(dOut, "upsampleNearest2xBackward");
        require(dOut.rank() == 4 && dOut.dim(2) % 2 == 0 && dOut.dim(3) % 2 == 0, "upsampleNearest2xBackward",
                "expects (N, C, 2H, 2W)", dOut);
        int h = dOut.dim(2) / 2;
        int w = dOut.dim(3) / 2;
        CpuTensor t = newFloat(s, Shape.of(dOut.dim(0), dOut.dim(1), h, w), dOut.dtype());
        Layouts.upsample2xBackward(d, dOut.dim(0) * dOut.dim(1), h, w, t.data());
        return done(t);
    }

    // ---- reductions and loss -------------------------------------------------------------------

    private Tensor reduce(Scope s, Tensor x, int[] dims, boolean keepDim, boolean mean, String op) {
        float[] d = f(x, op);
        Shape in = x.shape();
        boolean[] reduced = new boolean[in.rank()];
        if (dims.length == 0) {
            Arrays.fill(reduced, true);
        }
        for (int dim : dims) {
            int a = in.axis(dim);
            require(!reduced[a], op, "dimension " + dim + " given twice", x);
            reduced[a] = true;
        }
        long count = 1;
        int kept = 0;
        int[] keepDims = new int[in.rank()];
        int[] dropDims = new int[in.rank()];
        for (int i = 0; i < in.rank(); i++) {
            if (reduced[i]) {
                count *= in.dim(i);
                keepDims[i] = 1;
            } else {
                keepDims[i] = in.dim(i);
                dropDims[kept++] = in.dim(i);
            }
        }
        Shape out = keepDim ? Shape.of(keepDims) : Shape.of(Arrays.copyOf(dropDims, kept));
        CpuTensor t = newFloat(s, out, x.dtype());
        Reductions.sum(d, in, reduced, t.data(), mean ? 1.0 / count : 1.0);
        return done(t);
    }

    @Override
    public Tensor sum(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim, false, "sum");
    }

    @Override
    public Tensor mean(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim, true, "mean");
    }

    @Override
    public Tensor mseLoss(Scope s, Tensor pred, Tensor target) {
        sameDtype("mseLoss", pred, target);
        sameShape("mseLoss", pred, target);
        CpuTensor t = newFloat(s, Shape.scalar(), pred.dtype());
        t.data()[0] = (float) Reductions.mse(f(pred, "mseLoss"), f(target, "mseLoss"), (int) pred.numel());
        return done(t);
    }

    @Override
    public Tensor mseLossBackward(Scope s, Tensor dLoss, Tensor pred, Tensor target) {
        sameDtype("mseLossBackward", dLoss, pred, target);
        sameShape("mseLossBackward", pred, target);
        require(dLoss.numel() == 1, "mseLossBackward", "loss gradient must be a single value", dLoss);
        CpuTensor t = newFloat(s, pred.shape(), pred.dtype());
        Reductions.mseBackward(f(dLoss, "mseLossBackward")[0], f(pred, "mseLossBackward"), f(target, "mseLossBackward"),
                t.data(), (int) pred.numel());
        return done(t);
    }

    // ---- embeddings ----------------------------------------------------------------------------

    @Override
    public Tensor embedding(Scope s, Tensor weight, Tensor ids) {
        float[] w = f(weight, "embedding");
        long[] id = cpu(ids, "embedding").longs();
        require(weight.rank() == 2, "embedding", "weight must be (V, D)", weight);
        int d = weight.dim(1);
        int[] outDims = Arrays.copyOf(ids.shape().dims(), ids.rank() + 1);
        outDims[ids.rank()] = d;
        CpuTensor t = newFloat(s, Shape.of(outDims), weight.dtype());
        Reductions.embedding(w, weight.dim(0), d, id, t.data());
        return t;
    }

    @Override
    public Tensor embeddingBackward(Scope s, Tensor dOut, Tensor ids, int numEmbeddings) {
        float[] g = f(dOut, "embeddingBackward");
        long[] id = cpu(ids, "embeddingBackward").longs();
        int d = dOut.dim(-1);
        require(dOut.numel() == (long) id.length * d, "embeddingBackward", "gradient does not match ids", dOut, ids);
        CpuTensor t = newFloat(s, Shape.of(numEmbeddings, d), dOut.dtype());
        Reductions.embeddingBackward(g, id, numEmbeddings, d, t.data());
        return done(t);
    }

    @Override
    public Tensor sinusoidalEmbedding(Scope s, Tensor values, int dim) {
        CpuTensor c = cpu(values, "sinusoidalEmbedding");
        require(values.rank() == 1 && dim > 0 && dim % 2 == 0, "sinusoidalEmbedding",
                "expects values (N) and an even dim, got dim " + dim, values);
        double[] v = new double[(int) values.numel()];
        if (values.dtype() == DType.I64) {
            long[] l = c.longs();
            for (int i = 0; i < v.length; i++) {
                v[i] = l[i];
            }
        } else {
            float[] fl = c.data();
            for (int i = 0; i < v.length; i++) {
                v[i] = fl[i];
            }
        }
        CpuTensor t = newFloat(s, Shape.of(v.length, dim), DType.F32);
        Reductions.sinusoidal(v, dim, t.data());
        return t;
    }
}
