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
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;

/**
 * The storage half of the {@code cpu} backend: identity and memory accounting, argument checks,
 * creation and host copies, in-place updates and data movement (layout, resampling). The arithmetic
 * half is {@link CpuBackend}.
 */
abstract sealed class CpuStorage implements Backend permits CpuBackend {
    final Parallel par;
    private final AtomicLong liveTensors = new AtomicLong();
    private final MemoryMeter memory = new MemoryMeter();

    CpuStorage(int threads) {
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
    public boolean storesOnJavaHeap() {
        return true;
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
        par.close();
    }

    /** The storage account of a new tensor: a new one, or its base's for a view. */
    MemoryMeter.Storage allocated(CpuTensor t, CpuTensor base) {
        liveTensors.incrementAndGet();
        return base == null ? memory.allocate(t.storageBytes()) : memory.share(base.storage());
    }

    void released(CpuTensor t) {
        liveTensors.decrementAndGet();
        memory.release(t.storage());
    }

    // ---- helpers -------------------------------------------------------------------------------

    static CpuTensor cpu(Tensor t, String op) {
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

    /** The values of an op's floating input; a storage-only (F8_E4M3) input is refused, naming the op. */
    static float[] f(Tensor t, String op) {
        CpuTensor c = cpu(t, op);
        Backend.checkComputable(op, t);
        return c.data();
    }

    static float[] fOrNull(Tensor t, String op) {
        return t == null ? null : f(t, op);
    }

    CpuTensor newFloat(Scope s, Shape shape, DType dtype) {
        if (!dtype.isFloat() || dtype.isStorageOnly()) {
            throw new IllegalArgumentException("expected a floating dtype ops compute in (f32, bf16, f16), got " + dtype);
        }
        return new CpuTensor((CpuBackend) this, s, shape, dtype, new float[shape.numelInt()], null, null);
    }

    /** Rounds the result to its storage precision and returns it. */
    static Tensor done(CpuTensor t) {
        if (t.dtype() != DType.F32) {
            float[] d = t.data();
            Elementwise.round(d, d.length, t.dtype());
        }
        return t;
    }

    static void sameDtype(String op, Tensor... ts) {
        DType d = null;
        for (Tensor t : ts) {
            if (t == null) {
                continue;
            }
            if (!t.dtype().isFloat()) {
                throw new IllegalArgumentException(op + ": " + t.describe() + " is not floating");
            }
            Backend.checkComputable(op, t);
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

    static void sameShape(String op, Tensor a, Tensor b) {
        if (!a.shape().equals(b.shape())) {
            throw new IllegalArgumentException(op + ": shapes differ: " + a.describe() + " vs " + b.describe());
        }
    }

    static void require(boolean ok, String op, String what, Tensor... ts) {
        if (!ok) {
            throw new IllegalArgumentException(op + ": " + what + " (" + String.join(", ", describeAll(ts)) + ")");
        }
    }

    // ---- creation and host copies --------------------------------------------------------------

    /**
     * An F8_E4M3 tensor (the compact form: one byte a value, read-only) with the values {@code values[0, n)} rounded to
     * fp8 ({@link Fp8E4m3#encode}); or, with {@code dtype} F32, the F32 tensor of those rounded values, still one byte
     * a value ({@link #frozenFromHostBytes}'s form).
     */
    CpuTensor fp8(Scope s, Shape shape, float[] values, DType dtype) {
        byte[] codes = new byte[shape.numelInt()];
        Fp8E4m3.encode(values, 0, codes.length, codes, 0);
        return new CpuTensor((CpuBackend) this, s, shape, MemorySegment.ofArray(codes), DType.F8_E4M3, dtype);
    }

    @Override
    public Tensor full(Scope s, Shape shape, DType dtype, double value) {
        if (dtype.isStorageOnly()) {
            float[] v = new float[shape.numelInt()];
            Arrays.fill(v, (float) value);
            return fp8(s, shape, v, dtype);
        }
        if (dtype == DType.I64) {
            long[] l = new long[shape.numelInt()];
            Arrays.fill(l, (long) value);
            return new CpuTensor((CpuBackend) this, s, shape, dtype, null, l, null);
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
        if (dtype.isStorageOnly()) {
            return fp8(s, shape, data, dtype);
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
        return new CpuTensor((CpuBackend) this, s, shape, DType.I64, null, data.clone(), null);
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
            return new CpuTensor((CpuBackend) this, s, shape, dtype, null, l, null);
        }
        if (dtype.isStorageOnly()) {
            return new CpuTensor((CpuBackend) this, s, shape, bytes, dtype, dtype);
        }
        CpuTensor t = newFloat(s, shape, dtype);
        SafetensorsFile.convertToFloats(bytes, dtype.stDType(), t.data(), 0, n, "fromHostBytes");
        return t;
    }

    @Override
    public Tensor frozenFromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType stored) {
        if (stored != DType.F16 && stored != DType.BF16 && stored != DType.F8_E4M3) {
            return Backend.super.frozenFromHostBytes(s, bytes, shape, stored);
        }
        long need = (long) shape.numelInt() * stored.sizeBytes();
        if (bytes.byteSize() != need) {
            throw new IllegalArgumentException("frozenFromHostBytes: " + bytes.byteSize() + " bytes for " + shape + " "
                    + stored + " (expected " + need + ")");
        }
        return new CpuTensor((CpuBackend) this, s, shape, bytes, stored, DType.F32);
    }

    @Override
    public DType frozenStorage(Tensor t) {
        CpuTensor c = cpu(t, "frozenStorage");
        StDType type = c.compactType();
        return type == null ? t.dtype() : DType.of(type);
    }

    @Override
    public float[] toHost(Tensor t) {
        CpuTensor c = cpu(t, "toHost");
        return c.compact() ? c.data() : c.data().clone();
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
            Arrays.fill(t.writable("fillInto"), (float) value);
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
        System.arraycopy(s.data(), 0, d.writable("copyInto"), 0, (int) s.numel());
        done(d);
    }

    @Override
    public void axpyInto(Tensor y, double alpha, Tensor x) {
        sameDtype("axpyInto", y);
        sameDtype("axpyInto", x);
        sameShape("axpyInto", y, x);
        float[] yd = cpu(y, "axpyInto").writable("axpyInto");
        float[] xd = f(x, "axpyInto");
        float a = (float) alpha;
        for (int i = 0; i < yd.length; i++) {
            yd[i] += a * xd[i];
        }
        done((CpuTensor) y);
    }

    @Override
    public void scaleInto(Tensor y, double alpha) {
        float[] yd = cpu(y, "scaleInto").writable("scaleInto");
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
        if (x.dtype().isStorageOnly()) {
            return new CpuTensor((CpuBackend) this, s, shape, c.compactBytes(), x.dtype(), x.dtype()); // a read-only copy
        }
        boolean isFloat = x.dtype().isFloat();
        return new CpuTensor((CpuBackend) this, s, shape, x.dtype(), isFloat ? c.data() : null, isFloat ? null : c.longs(), c);
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
            return new CpuTensor((CpuBackend) this, s, out, DType.I64, null, o, null);
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
            return new CpuTensor((CpuBackend) this, s, out, DType.I64, null, o, null);
        }
        if (x.dtype().isStorageOnly() && axis == 0) {
            // a row block of fp8 weights (OpenCLIP's fused q/k/v): a copy of its bytes
            long row = x.numel() / x.dim(0);
            return new CpuTensor((CpuBackend) this, s, out, c.compactBytes().asSlice(start * row, length * row),
                    x.dtype(), x.dtype());
        }
        Backend.checkComputable("narrow", x);
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
        CpuTensor t = isLong ? new CpuTensor((CpuBackend) this, s, out, DType.I64, null, new long[out.numelInt()], null)
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
        Shape b = Shape.broadcast(x.shape(), shape);
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
            return new CpuTensor((CpuBackend) this, s, x.shape(), dtype, null, c.longs().clone(), null);
        }
        if (dtype.isStorageOnly()) {
            require(x.dtype().isFloat(), "cast", "integer to " + dtype + " casts are not supported", x);
            return fp8(s, x.shape(), c.data(), dtype);
        }
        if (c.compact()) {
            return done(new CpuTensor((CpuBackend) this, s, x.shape(), dtype, c.data(), null, null)); // a fresh decoded copy
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
}
