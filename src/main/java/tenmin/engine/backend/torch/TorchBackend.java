package tenmin.engine.backend.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.stream.IntStream;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.DeviceClock;
import tenmin.engine.api.Generator;
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * The op contract on libtorch: every method is one or a few ATen kernels on this backend's device
 * (CPU or one CUDA GPU). Tensors are always contiguous; intermediate ATen views are closed before a
 * method returns. fp32, bf16 and fp16 work everywhere; bf16/fp16 matmuls and convolutions accumulate in
 * fp32 (cuBLAS, cuDNN and oneDNN defaults).
 *
 * <p>Random numbers ({@link #randn}, {@link #randUniform}) are computed on the device from
 * {@code (seed, counter)} with the same SplitMix64 finaliser and Box–Muller transform as the {@code cpu}
 * backend, in int64 and float64 ATen arithmetic, so both backends draw the same noise for the same
 * generator state.
 *
 * <p>Not thread-safe, like the rest of the engine. Dimension legend as in {@link Backend}.
 */
public final class TorchBackend implements Backend {
    /**
     * Set to 0, the environment variable that turns the CUDA inference formulations ({@link #groupNormInference32},
     * {@link #linearGeglu}) off, for A/B measurements (docs/PERFORMANCE.md).
     */
    public static final String INFERENCE_KERNELS_ENV = "TENMIN_INFERENCE_KERNELS";
    private final LibTorch lib;
    private final Aten at;
    private final AtenAttention attention;
    private final Device device;
    private final MemoryMeter memory = new MemoryMeter();
    /** {@link #sinusoidalEmbedding} frequencies (1, half) fp32 per half width, uploaded once. */
    private final Map<Integer, NativeTensor> sinusoidFrequencies = new HashMap<>();
    private long liveTensors;
    private boolean closed;
    /** Host staging buffer of the packed transfers on the caller's thread ({@link #toHostAll}, copyFromHostAll). */
    private final KeptBuffer staging = new KeptBuffer();
    /** Why page-locking a staging buffer failed (once), else null. */
    private String stagingUnpinned;
    /** {@link #toHostLater}'s buffer (its completions run on any thread); {@code laterStagingBusy} while one uses it. */
    private final KeptBuffer laterStaging = new KeptBuffer();
    private final AtomicBoolean laterStagingBusy = new AtomicBoolean();
    /** Free device memory {@link #toHostLater} leaves beside its packed copy, else it downloads at once. */
    static final long LATER_HEADROOM_BYTES = 1L << 30;
    /**
     * Whether {@link #groupNormInference32} takes the statistics + batch-norm path (on CUDA; {@link
     * #preferInferenceKernels} for tests on the CPU libtorch); cleared when libtorch refuses it.
     */
    private boolean groupNormByStatistics;
    /** Whether {@link #linearGeglu} computes the halves on their own weight rows (on CUDA; tests: as above). */
    private boolean splitGeglu;

    /** A backend on {@code device} with the default attention kernel choice. */
    public TorchBackend(LibTorch lib, Device device) {
        this(lib, device, AtenAttention.Kernel.AUTO);
    }

    /**
     * A backend on {@code device}; {@code attentionKernel} picks cuDNN, flash or memory-efficient attention on
     * CUDA ({@code AUTO}: cuDNN for bf16/fp16, memory-efficient for fp32; ignored on the CPU).
     */
    public TorchBackend(LibTorch lib, Device device, AttentionKernel attentionKernel) {
        this(lib, device, AtenAttention.Kernel.valueOf(attentionKernel.name()));
    }

    private TorchBackend(LibTorch lib, Device device, AtenAttention.Kernel kernel) {
        if (device.kind() == Device.Kind.CUDA && device.index() >= lib.cudaDeviceCount()) {
            throw new IllegalArgumentException("device " + device + " is not available: " + (lib.cudaDeviceCount() == 0
                    ? lib.cudaProblem() : lib.cudaDeviceCount() + " CUDA device(s)") + " (" + lib.describe() + ")");
        }
        this.lib = lib;
        this.device = device;
        this.at = new Aten(lib.shim(), device);
        this.attention = new AtenAttention(at, kernel);
        boolean inference = device.kind() == Device.Kind.CUDA && !"0".equals(System.getenv(INFERENCE_KERNELS_ENV));
        this.groupNormByStatistics = inference;
        this.splitGeglu = inference;
    }

    /** A backend on {@code device} with the libtorch {@link LibTorch#locateAndLoad()} finds. */
    public static TorchBackend create(Device device) {
        return new TorchBackend(LibTorch.locateAndLoad(), device);
    }

    /** Attention kernels selectable on CUDA. */
    public enum AttentionKernel { AUTO, CUDNN, FLASH, EFFICIENT }

    /** The libtorch this backend runs on. */
    public LibTorch libTorch() {
        return lib;
    }

    @Override
    public String name() {
        return "torch";
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
    public void synchronize() {
        if (device.kind() == Device.Kind.CUDA && lib.shim().cudaDeviceSynchronize != null) {
            try {
                int rc = (int) lib.shim().cudaDeviceSynchronize.invokeExact();
                if (rc != 0) {
                    throw new TorchException("cudaDeviceSynchronize returned CUDA error " + rc);
                }
            } catch (Throwable t) {
                throw Shim.rethrow("cudaDeviceSynchronize", t);
            }
        }
    }

    /** On CUDA: CUDA events on the default stream ({@link CudaEventClock}); on the CPU the wall clock. */
    @Override
    public DeviceClock deviceClock() {
        if (device.kind() == Device.Kind.CUDA && CudaEventClock.available(lib.shim())) {
            return new CudaEventClock(lib.shim());
        }
        return DeviceClock.wall();
    }

    @Override
    public void profilerRegion(boolean open) {
        MethodHandle h = open ? lib.shim().cudaProfilerStart : lib.shim().cudaProfilerStop;
        if (device.kind() != Device.Kind.CUDA || h == null) {
            return;
        }
        synchronize();
        String name = open ? "cudaProfilerStart" : "cudaProfilerStop";
        try {
            int rc = (int) h.invokeExact();
            if (rc != 0) {
                throw new TorchException(name + " returned CUDA error " + rc);
            }
        } catch (Throwable t) {
            throw Shim.rethrow(name, t);
        }
    }

    /**
     * Free and total bytes of the CUDA device as the driver reports them ({@code cudaMemGetInfo}; the
     * caching allocator of libtorch keeps freed blocks, so "used" includes its cache), or null on the CPU.
     */
    public long[] deviceMemoryInfo() {
        if (device.kind() != Device.Kind.CUDA || lib.shim().cudaMemGetInfo == null) {
            return null;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(java.lang.foreign.ValueLayout.JAVA_LONG);
            MemorySegment total = a.allocate(java.lang.foreign.ValueLayout.JAVA_LONG);
            int rc = (int) lib.shim().cudaMemGetInfo.invokeExact(free, total);
            if (rc != 0) {
                throw new TorchException("cudaMemGetInfo returned CUDA error " + rc);
            }
            return new long[] {free.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0),
                    total.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw Shim.rethrow("cudaMemGetInfo", t);
        }
    }

    @Override
    public void close() {
        closed = true;
        staging.close();
        laterStaging.close();
        NativeTensor.closeAll(sinusoidFrequencies.values().toArray(new NativeTensor[0]));
        sinusoidFrequencies.clear();
    }

    @Override
    public String toString() {
        return "torch backend on " + device + " (" + lib.describe() + ")";
    }

    // ---- tensors --------------------------------------------------------------------------------

    /** Wraps a new native result (owned from now on by the returned tensor). */
    private TorchTensor wrap(Scope s, NativeTensor n, Shape shape, DType dtype) {
        return wrap(s, n, shape, dtype, null);
    }

    /**
     * Wraps a native result on new storage ({@code viewOf} null) or a view of {@code viewOf}'s storage, with the
     * kernel-specific {@code extras} that die with it (their bytes are not counted).
     */
    private TorchTensor wrap(Scope s, NativeTensor n, Shape shape, DType dtype, TorchTensor viewOf,
                             NativeTensor... extras) {
        if (closed) {
            NativeTensor.closeAll(n);
            NativeTensor.closeAll(extras);
            throw new IllegalStateException("torch backend used after close");
        }
        if (s.backend() != this && !(s.backend().name().equals("torch") && s.backend().device().equals(device))) {
            NativeTensor.closeAll(n);
            NativeTensor.closeAll(extras);
            throw new IllegalArgumentException("scope '" + s.path() + "' belongs to another backend");
        }
        MemoryMeter.Storage storage = viewOf == null ? memory.allocate(shape.numel() * dtype.sizeBytes())
                : memory.share(viewOf.storage());
        TorchTensor t;
        try {
            t = new TorchTensor(s, shape, dtype, this, n, storage, extras);
        } catch (RuntimeException e) {
            memory.release(storage);
            NativeTensor.closeAll(n);
            NativeTensor.closeAll(extras);
            throw e;
        }
        liveTensors++;
        return t;
    }

    /** Wraps a native result whose shape the kernel decided. */
    private TorchTensor wrap(Scope s, NativeTensor n, DType dtype) {
        return wrap(s, n, shapeOf(n), dtype);
    }

    /** Called once by {@link TorchTensor#release()}. */
    void released(TorchTensor t) {
        liveTensors--;
        memory.release(t.storage());
    }

    private NativeTensor n(Tensor t) {
        if (!(t instanceof TorchTensor tt) || tt.torchBackend() != this) {
            throw new IllegalArgumentException("tensor " + t.describe() + " does not belong to " + this);
        }
        return tt.data();
    }

    private static Shape shapeOf(NativeTensor n) {
        return Shape.of(n.sizes());
    }

    private static void sameFloat(String op, Tensor... ts) {
        DType d = null;
        for (Tensor t : ts) {
            if (t == null) {
                continue;
            }
            t.checkOpen();
            if (!t.dtype().isFloat()) {
                throw new IllegalArgumentException(op + ": " + t.describe() + " is not floating");
            }
            Backend.checkComputable(op, t);
            if (d == null) {
                d = t.dtype();
            } else if (t.dtype() != d) {
                throw new IllegalArgumentException(op + ": mixed dtypes " + describe(ts) + " (cast explicitly)");
            }
        }
    }

    private static String describe(Tensor... ts) {
        StringBuilder b = new StringBuilder();
        for (Tensor t : ts) {
            if (t != null) {
                b.append(b.length() == 0 ? "" : ", ").append(t.describe());
            }
        }
        return b.toString();
    }

    private static void require(boolean ok, String op, String what, Tensor... ts) {
        if (!ok) {
            throw new IllegalArgumentException(op + ": " + what + " (" + describe(ts) + ")");
        }
    }

    // ---- creation and host copies -----------------------------------------------------------------

    @Override
    public Tensor full(Scope s, Shape shape, DType dtype, double value) {
        NativeTensor n = at.empty(shape.dimsLong(), at.code(dtype));
        try {
            at.fill(n, value);
        } catch (RuntimeException e) {
            n.close();
            throw e;
        }
        return wrap(s, n, shape, dtype);
    }

    @Override
    public Tensor fromHost(Scope s, float[] data, Shape shape, DType dtype) {
        require(dtype.isFloat(), "fromHost", "float data needs a floating dtype, not " + dtype);
        require(data.length == shape.numel(), "fromHost", data.length + " values for shape " + shape);
        return wrap(s, at.upload(data, shape.dimsLong(), at.code(dtype)), shape, dtype);
    }

    @Override
    public Tensor fromHost(Scope s, long[] data, Shape shape) {
        require(data.length == shape.numel(), "fromHost", data.length + " values for shape " + shape);
        return wrap(s, at.upload(data, shape.dimsLong()), shape, DType.I64);
    }

    @Override
    public Tensor fromHostBytes(Scope s, MemorySegment bytes, Shape shape, DType dtype) {
        long need = shape.numel() * dtype.sizeBytes();
        require(bytes.byteSize() == need, "fromHostBytes", bytes.byteSize() + " bytes for " + shape + " " + dtype
                + " (expected " + need + ")");
        int code = at.code(dtype);
        if (bytes.isNative()) {
            return wrap(s, at.uploadRaw(bytes, shape.dimsLong(), code, code), shape, dtype);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment copy = a.allocate(Math.max(need, 1), 8);
            copy.copyFrom(bytes);
            return wrap(s, at.uploadRaw(copy, shape.dimsLong(), code, code), shape, dtype);
        }
    }

    @Override
    public float[] toHost(Tensor t) {
        require(t.dtype().isFloat(), "toHost", "not a floating tensor; use toHostLongs", t);
        return at.downloadFloats(n(t));
    }

    /**
     * One transfer: the tensors, flattened (and converted to fp32), are concatenated on the device, copied to one
     * host buffer and spread into the arrays on all cores. The recipe's 2,104 LoCon gradients (480 MB) took 363-400
     * ms one by one on an H200 (a synchronizing copy each, and a zeroed staging buffer each).
     */
    @Override
    public void toHostAll(List<Tensor> src, List<float[]> dst) {
        Backend.checkBulk("toHostAll", src, dst);
        if (src.isEmpty()) {
            return;
        }
        long[] offsets = packedOffsets(src);
        try (NativeTensor packed = pack(src, true);
             NativeTensor host = staging.view(offsets[src.size()])) {
            at.copyInto(host, packed);                                              // the one sync point
            spread(host, offsets, dst);
        }
    }

    /**
     * The values packed on the device now, a copy of their own (later ops may change the tensors at once); the
     * completion copies them down from the thread that runs it (on CUDA it waits there, not here, for the device to
     * reach the copy) into a page-locked buffer kept for it. Where the device has less than the packed copy plus
     * {@link #LATER_HEADROOM_BYTES} free (what runs meanwhile needs the room), {@link #toHostAll} now instead.
     */
    @Override
    public Runnable toHostLater(List<Tensor> src, List<float[]> dst) {
        Backend.checkBulk("toHostLater", src, dst);
        if (src.isEmpty()) {
            return () -> { };
        }
        long[] offsets = packedOffsets(src);
        long total = offsets[src.size()];
        long[] memory = deviceMemoryInfo();
        if (memory != null && memory[0] < 4 * total + LATER_HEADROOM_BYTES) {
            toHostAll(src, dst);
            return () -> { };
        }
        NativeTensor packed = pack(src, true);
        AtomicBoolean done = new AtomicBoolean();
        return () -> {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            try (packed) {
                boolean kept = laterStagingBusy.compareAndSet(false, true);
                try (NativeTensor host = kept ? laterStaging.view(total)
                        : at.emptyHost(new long[] {total}, at.code(DType.F32))) {
                    at.copyInto(host, packed);
                    spread(host, offsets, dst);
                } finally {
                    if (kept) {
                        laterStagingBusy.set(false);
                    }
                }
            }
        };
    }

    /**
     * The tensors flattened and concatenated into one new 1-D tensor on this device, in their order (each at its
     * {@link #packedOffsets}); converted to fp32 with {@code asF32}, else all of the first one's dtype.
     */
    private NativeTensor pack(List<Tensor> src, boolean asF32) {
        int count = src.size();
        NativeTensor[] flat = new NativeTensor[count];
        try {
            for (int i = 0; i < count; i++) {
                Tensor t = src.get(i);
                flat[i] = at.reshape(n(t), new long[] {t.numel()});
                if (asF32 && t.dtype() != DType.F32) {
                    NativeTensor f32 = at.empty(new long[] {t.numel()}, at.code(DType.F32));
                    at.copyInto(f32, flat[i]);
                    flat[i].close();
                    flat[i] = f32;
                }
            }
            return at.cat(flat, 0);
        } finally {
            NativeTensor.closeAll(flat);
        }
    }

    /** Copies a packed fp32 host tensor into the arrays, on all cores. */
    private static void spread(NativeTensor host, long[] offsets, List<float[]> dst) {
        long total = offsets[dst.size()];
        MemorySegment seg = host.dataPtr().reinterpret(4 * total);
        IntStream.range(0, dst.size()).parallel().forEach(i -> MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT,
                4 * offsets[i], dst.get(i), 0, (int) (offsets[i + 1] - offsets[i])));
    }

    /** Where each tensor starts in a packed transfer, in elements; the last entry is the total. */
    private static long[] packedOffsets(List<Tensor> ts) {
        long[] offsets = new long[ts.size() + 1];
        for (int i = 0; i < ts.size(); i++) {
            offsets[i + 1] = offsets[i] + ts.get(i).numel();
        }
        return offsets;
    }

    /**
     * A host buffer for packed transfers, kept from one to the next (fp32, 1-D; page-locked on CUDA: pageable copies
     * of the recipe's 480 MB ran at 1.5-3.5 GB/s on an H200 machine, page-locked ones go at the link's rate), grown as
     * needed.
     */
    private final class KeptBuffer {
        private NativeTensor buffer;

        /** {@code n} values of it (a view the caller closes); plain host memory where it cannot be page-locked. */
        synchronized NativeTensor view(long n) {
            if (buffer == null || buffer.sizes()[0] < n) {
                NativeTensor.closeAll(buffer);
                buffer = pinned(n);
            }
            return buffer == null ? at.emptyHost(new long[] {n}, at.code(DType.F32)) : at.narrow(buffer, 0, 0, n);
        }

        synchronized void close() {
            NativeTensor.closeAll(buffer);
            buffer = null;
        }
    }

    /** {@code n} fp32 values of page-locked host memory, or null (CPU device, or page-locking failed: said once). */
    private NativeTensor pinned(long n) {
        if (device.kind() == Device.Kind.CPU || stagingUnpinned != null) {
            return null;
        }
        try (NativeTensor host = at.emptyHost(new long[] {n}, at.code(DType.F32))) {
            return at.pinned(host);
        } catch (RuntimeException e) {
            stagingUnpinned = e.getMessage();
            System.err.println("WARNING: could not page-lock a host buffer for the optimizer step's transfers ("
                    + e.getMessage() + "); they use pageable memory");
            return null;
        }
    }

    /** One transfer: the arrays are packed into one host buffer on all cores, uploaded, and copied into place. */
    @Override
    public void copyFromHostAll(List<Tensor> dst, List<float[]> src) {
        Backend.checkBulk("copyFromHostAll", dst, src);
        int count = dst.size();
        if (count == 0) {
            return;
        }
        long[] offsets = packedOffsets(dst);
        long total = offsets[count];
        int f32 = at.code(DType.F32);
        try (NativeTensor host = staging.view(total)) {
            MemorySegment seg = host.dataPtr().reinterpret(4 * total);
            IntStream.range(0, count).parallel().forEach(i -> MemorySegment.copy(src.get(i), 0, seg,
                    ValueLayout.JAVA_FLOAT, 4 * offsets[i], (int) (offsets[i + 1] - offsets[i])));
            NativeTensor packed = host;
            if (device.kind() != Device.Kind.CPU) {
                packed = at.empty(new long[] {total}, f32);
                at.copyInto(packed, host);                                          // the one upload
            }
            try {
                for (int i = 0; i < count; i++) {
                    Tensor t = dst.get(i);
                    try (NativeTensor part = at.narrow(packed, 0, offsets[i], t.numel());
                         NativeTensor shaped = at.view(part, t.shape().dimsLong())) {
                        at.copyInto(n(t), shaped);
                    }
                }
            } finally {
                if (packed != host) {
                    packed.close();
                }
            }
        }
    }

    @Override
    public long[] toHostLongs(Tensor t) {
        require(t.dtype() == DType.I64, "toHostLongs", "not an i64 tensor", t);
        return at.downloadLongs(n(t));
    }

    @Override
    public Tensor randn(Scope s, Shape shape, DType dtype, Generator gen) {
        require(dtype.isFloat(), "randn", "needs a floating dtype, not " + dtype);
        long count = shape.numel();
        long first = gen.reserve(count);
        try (NativeTensor r = Random.bits(at, gen.seed(), first, count);
             NativeTensor normal = Random.normal(at, r)) {
            return wrap(s, Random.finish(at, normal, shape.dimsLong(), at.code(dtype)), shape, dtype);
        }
    }

    @Override
    public Tensor randUniform(Scope s, Shape shape, DType dtype, double low, double high, Generator gen) {
        require(dtype.isFloat(), "randUniform", "needs a floating dtype, not " + dtype);
        long count = shape.numel();
        long first = gen.reserve(count);
        try (NativeTensor r = Random.bits(at, gen.seed(), first, count);
             NativeTensor u = Random.uniform(at, r, low, high)) {
            return wrap(s, Random.finish(at, u, shape.dimsLong(), at.code(dtype)), shape, dtype);
        }
    }

    // ---- in place -----------------------------------------------------------------------------------

    @Override
    public void fillInto(Tensor dst, double value) {
        at.fill(n(dst), value);
    }

    @Override
    public void copyInto(Tensor dst, Tensor src) {
        require(dst.numel() == src.numel(), "copyInto", "element counts differ", dst, src);
        require(dst.dtype().isFloat() == src.dtype().isFloat(), "copyInto", "float/integer mismatch", dst, src);
        if (dst.shape().equals(src.shape())) {
            at.copyInto(n(dst), n(src));
        } else {
            try (NativeTensor v = at.view(n(src), dst.shape().dimsLong())) {
                at.copyInto(n(dst), v);
            }
        }
    }

    @Override
    public void axpyInto(Tensor y, double alpha, Tensor x) {
        sameFloat("axpyInto", y);
        sameFloat("axpyInto", x);
        require(y.shape().equals(x.shape()), "axpyInto", "shapes differ", y, x);
        try (NativeTensor sum = at.add(n(y), n(x), alpha)) {
            at.copyInto(n(y), sum);
        }
    }

    /** Runs shorter than this are added pair by pair. */
    private static final int FUSED_RUN = 4;

    /**
     * The pairs whose ys lie back to back in one buffer (the trainer's gradients after the device optimizer packed
     * them into its arena), in runs of at least {@link #FUSED_RUN}: one {@code cat} of the xs, one addition over the
     * run's range, one copy back: three ops for the run instead of two per pair (the recipe's backward: 2,104 pairs).
     * The rest pair by pair, a target named more than once (an activation's gradient summed from several uses) in the
     * order of its pairs; the sums are the same values.
     */
    @Override
    public void axpyIntoAll(List<Tensor> ys, List<Tensor> xs) {
        int count = ys.size();
        require(count == xs.size(), "axpyIntoAll", count + " targets but " + xs.size() + " sources");
        long[] address = new long[count];
        boolean[] fusable = new boolean[count];
        DType yType = count == 0 ? null : ys.get(0).dtype();
        DType xType = count == 0 ? null : xs.get(0).dtype();
        Map<Long, Integer> uses = new HashMap<>();
        for (int i = 0; i < count; i++) {
            Tensor y = ys.get(i);
            Tensor x = xs.get(i);
            sameFloat("axpyIntoAll", y);
            sameFloat("axpyIntoAll", x);
            require(y.shape().equals(x.shape()), "axpyIntoAll", "shapes differ", y, x);
            n(y);                                                      // this backend's
            TorchTensor target = (TorchTensor) y;
            address[i] = target.address();
            fusable[i] = y.dtype() == yType && x.dtype() == xType && target.contiguous();
            uses.merge(address[i], 1, Integer::sum);
        }
        List<Integer> fused = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            if (fusable[i] && uses.get(address[i]) == 1) {
                fused.add(i);
            } else {
                axpyInto(ys.get(i), 1.0, xs.get(i));                   // in list order
            }
        }
        Integer[] order = fused.toArray(new Integer[0]);
        Arrays.sort(order, (a, b) -> Long.compare(address[a], address[b]));
        long width = yType == null ? 0 : yType.sizeBytes();
        int start = 0;
        for (int k = 1; k <= order.length; k++) {
            boolean continues = k < order.length
                    && address[order[k]] == address[order[k - 1]] + ys.get(order[k - 1]).numel() * width;
            if (continues) {
                continue;
            }
            if (k - start >= FUSED_RUN) {
                addRun(ys, xs, order, start, k, address[order[start]]);
            } else {
                for (int j = start; j < k; j++) {
                    axpyInto(ys.get(order[j]), 1.0, xs.get(order[j]));
                }
            }
            start = k;
        }
    }

    /** ys[order[from..to)] += xs[same], the ys back to back from {@code address}. */
    private void addRun(List<Tensor> ys, List<Tensor> xs, Integer[] order, int from, int to, long address) {
        List<Tensor> sources = new ArrayList<>(to - from);
        for (int j = from; j < to; j++) {
            sources.add(xs.get(order[j]));
        }
        long total = packedOffsets(sources)[sources.size()];
        try (NativeTensor range = at.deviceView(MemorySegment.ofAddress(address), new long[] {total},
                at.code(ys.get(order[from]).dtype()));
             NativeTensor joined = pack(sources, false);
             NativeTensor sum = at.add(range, joined, 1.0)) {
            at.copyInto(range, sum);
        }
    }

    @Override
    public void scaleInto(Tensor y, double alpha) {
        sameFloat("scaleInto", y);
        // mul.Scalar then copy_: no device scalar to upload (an upload is a sync point on CUDA).
        try (NativeTensor scaled = at.mulScalar(n(y), alpha)) {
            at.copyInto(n(y), scaled);
        }
    }

    // ---- aliasing: flat buffers of many small tensors ------------------------------------------------

    @Override
    public boolean canAlias() {
        return true;
    }

    @Override
    public Tensor viewRange(Scope s, Tensor base, long offset, Shape shape) {
        checkRange("viewRange", base, offset, shape);
        return wrap(s, rangeOf(base, offset, shape), shape, base.dtype(), (TorchTensor) base);
    }

    @Override
    public void relocate(Tensor t, Tensor arena, long offset) {
        require(t instanceof TorchTensor tt && tt.torchBackend() == this && tt.extras().length == 0, "relocate",
                "not a plain tensor of this backend", t);
        require(t.dtype() == arena.dtype(), "relocate", "dtypes differ", t, arena);
        checkRange("relocate", arena, offset, t.shape());
        NativeTensor view = rangeOf(arena, offset, t.shape());
        try {
            at.copyInto(view, n(t));
        } catch (RuntimeException e) {
            view.close();
            throw e;
        }
        TorchTensor tt = (TorchTensor) t;
        memory.release(tt.storage());
        tt.rebase(view, memory.share(((TorchTensor) arena).storage()));
    }

    private void checkRange(String op, Tensor base, long offset, Shape shape) {
        require(base.rank() == 1, op, "the base must be 1-d", base);
        require(offset >= 0 && offset + shape.numel() <= base.numel(), op,
                "elements [" + offset + ", " + (offset + shape.numel()) + ") outside the base", base);
    }

    /** Elements [offset, offset + shape.numel()) of 1-d {@code base} viewed as {@code shape}. */
    private NativeTensor rangeOf(Tensor base, long offset, Shape shape) {
        try (NativeTensor part = at.narrow(n(base), 0, offset, shape.numel())) {
            return at.view(part, shape.dimsLong());
        }
    }

    // ---- layout -------------------------------------------------------------------------------------

    @Override
    public Tensor reshape(Scope s, Tensor x, Shape shape) {
        require(x.numel() == shape.numel(), "reshape", "cannot view as " + shape, x);
        return wrap(s, at.view(n(x), shape.dimsLong()), shape, x.dtype(), (TorchTensor) x);
    }

    @Override
    public Tensor permute(Scope s, Tensor x, int... dims) {
        require(dims.length == x.rank(), "permute", "needs " + x.rank() + " dims, got " + dims.length, x);
        long[] d = new long[dims.length];
        int[] out = new int[dims.length];
        for (int i = 0; i < dims.length; i++) {
            d[i] = x.shape().axis(dims[i]);
            out[i] = x.dim(dims[i]);
        }
        try (NativeTensor v = at.permute(n(x), d)) {
            return wrap(s, at.contiguous(v), Shape.of(out), x.dtype());
        }
    }

    @Override
    public Tensor narrow(Scope s, Tensor x, int dim, int start, int length) {
        int a = x.shape().axis(dim);
        require(start >= 0 && length >= 0 && start + length <= x.dim(a), "narrow",
                "[" + start + ", " + (start + length) + ") out of range for dim " + dim, x);
        try (NativeTensor v = at.narrow(n(x), a, start, length)) {
            return wrap(s, at.contiguous(v), x.shape().with(a, length), x.dtype());
        }
    }

    @Override
    public Tensor narrowBackward(Scope s, Tensor dOut, Shape inputShape, int dim, int start) {
        int a = inputShape.axis(dim);
        NativeTensor z = at.empty(inputShape.dimsLong(), at.code(dOut.dtype()));
        try (NativeTensor v = at.narrow(z, a, start, dOut.dim(a))) {
            at.fill(z, 0);
            at.copyInto(v, n(dOut));
        } catch (RuntimeException e) {
            z.close();
            throw e;
        }
        return wrap(s, z, inputShape, dOut.dtype());
    }

    @Override
    public Tensor cat(Scope s, List<Tensor> xs, int dim) {
        require(!xs.isEmpty(), "cat", "no tensors");
        Tensor first = xs.get(0);
        NativeTensor[] ns = new NativeTensor[xs.size()];
        for (int i = 0; i < ns.length; i++) {
            ns[i] = n(xs.get(i));
            require(xs.get(i).dtype() == first.dtype(), "cat", "mixed dtypes", first, xs.get(i));
        }
        return wrap(s, at.cat(ns, first.shape().axis(dim)), first.dtype());
    }

    @Override
    public Tensor pad2d(Scope s, Tensor x, int left, int right, int top, int bottom) {
        require(x.rank() >= 2, "pad2d", "needs at least 2 dims", x);
        return wrap(s, at.pad(n(x), new long[] {left, right, top, bottom}, 0.0), x.dtype());
    }

    @Override
    public Tensor expand(Scope s, Tensor x, Shape shape) {
        try (NativeTensor v = at.expand(n(x), shape.dimsLong())) {
            return wrap(s, at.contiguous(v), shape, x.dtype());
        }
    }

    @Override
    public Tensor cast(Scope s, Tensor x, DType dtype) {
        require(x.dtype().isFloat() == dtype.isFloat(), "cast", "float/integer casts are not supported", x);
        NativeTensor out = at.empty(x.shape().dimsLong(), at.code(dtype));
        try {
            at.copyInto(out, n(x));
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return wrap(s, out, x.shape(), dtype);
    }

    // ---- elementwise --------------------------------------------------------------------------------

    @Override
    public Tensor add(Scope s, Tensor a, Tensor b, double alpha) {
        sameFloat("add", a, b);
        return wrap(s, at.add(n(a), n(b), alpha), a.dtype());
    }

    @Override
    public Tensor mul(Scope s, Tensor a, Tensor b) {
        sameFloat("mul", a, b);
        return wrap(s, at.binary("aten::mul", "Tensor", n(a), n(b)), a.dtype());
    }

    @Override
    public Tensor div(Scope s, Tensor a, Tensor b) {
        sameFloat("div", a, b);
        return wrap(s, at.binary("aten::div", "Tensor", n(a), n(b)), a.dtype());
    }

    @Override
    public Tensor affine(Scope s, Tensor x, double scale, double shift) {
        sameFloat("affine", x);
        try (NativeTensor m = at.mulScalar(n(x), scale)) {
            return wrap(s, at.addScalar(m, shift, 1.0), x.shape(), x.dtype());
        }
    }

    @Override
    public Tensor unary(Scope s, Unary op, Tensor x) {
        sameFloat("unary " + op, x);
        String name = switch (op) {
            case EXP -> "aten::exp";
            case LOG -> "aten::log";
            case SQRT -> "aten::sqrt";
            case RSQRT -> "aten::rsqrt";
            case SQUARE -> "aten::square";
            case NEG -> "aten::neg";
            case ABS -> "aten::abs";
            case SIGN -> "aten::sign";
            case SIGMOID -> "aten::sigmoid";
            case TANH -> "aten::tanh";
            case SIN -> "aten::sin";
            case COS -> "aten::cos";
        };
        return wrap(s, at.unary(name, n(x)), x.shape(), x.dtype());
    }

    @Override
    public Tensor clamp(Scope s, Tensor x, double min, double max) {
        sameFloat("clamp", x);
        try (NativeTensor lo = at.deviceScalar(min); NativeTensor hi = at.deviceScalar(max);
             Dispatch d = at.dispatch("aten::clamp", "Tensor")) {
            return wrap(s, d.tensor(n(x)).optTensor(lo).optTensor(hi).call1(), x.shape(), x.dtype());
        }
    }

    // ---- activations ----------------------------------------------------------------------------------

    @Override
    public Tensor silu(Scope s, Tensor x) {
        sameFloat("silu", x);
        return wrap(s, at.unary("aten::silu", n(x)), x.shape(), x.dtype());
    }

    @Override
    public Tensor siluBackward(Scope s, Tensor dOut, Tensor x) {
        sameFloat("siluBackward", dOut, x);
        return wrap(s, at.binary("aten::silu_backward", "", n(dOut), n(x)), x.shape(), x.dtype());
    }

    private static String approximate(GeluApproximation a) {
        return a == GeluApproximation.TANH ? "tanh" : "none";
    }

    @Override
    public Tensor gelu(Scope s, Tensor x, GeluApproximation approximation) {
        sameFloat("gelu", x);
        return wrap(s, geluOf(n(x), approximation), x.shape(), x.dtype());
    }

    private NativeTensor geluOf(NativeTensor x, GeluApproximation approximation) {
        try (Dispatch d = at.dispatch("aten::gelu", "")) {
            return d.tensor(x).str(approximate(approximation)).call1();
        }
    }

    @Override
    public Tensor geluBackward(Scope s, Tensor dOut, Tensor x, GeluApproximation approximation) {
        sameFloat("geluBackward", dOut, x);
        return wrap(s, geluBackwardOf(n(dOut), n(x), approximation), x.shape(), x.dtype());
    }

    private NativeTensor geluBackwardOf(NativeTensor dOut, NativeTensor x, GeluApproximation approximation) {
        try (Dispatch d = at.dispatch("aten::gelu_backward", "")) {
            return d.tensor(dOut).tensor(x).str(approximate(approximation)).call1();
        }
    }

    /** The halves as views of x (no copies): gelu of the second, times the first. */
    @Override
    public Tensor geglu(Scope s, Tensor x) {
        sameFloat("geglu", x);
        int h = Backend.gegluHalf("geglu", x, null);
        int last = x.rank() - 1;
        try (NativeTensor a = at.narrow(n(x), last, 0, h); NativeTensor b = at.narrow(n(x), last, h, h);
             NativeTensor g = geluOf(b, GeluApproximation.NONE)) {
            return wrap(s, at.contiguousConsuming(at.binary("aten::mul", "Tensor", a, g)), x.shape().withLast(h),
                    x.dtype());
        }
    }

    /**
     * On CUDA: value and gate as two GEMMs on the weight's two row blocks (views of the kept Wᵀ, bias in each
     * GEMM's epilogue), so that GELU and the product run on contiguous tensors (vectorised kernels; on the halves of
     * one (.., 2H) result ATen's kernels take the strided path). Elsewhere the default.
     */
    @Override
    public Tensor linearGeglu(Scope s, Tensor x, Tensor weight, Tensor bias) {
        if (!splitGeglu) {
            return Backend.super.linearGeglu(s, x, weight, bias);
        }
        sameFloat("linearGeglu", x, weight, bias);
        require(weight.rank() == 2 && weight.dim(0) % 2 == 0 && x.dim(-1) == weight.dim(1), "linearGeglu",
                "x (.., K) needs weight (2H, K)", x, weight);
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == weight.dim(0)), "linearGeglu", "bias must be (2H)",
                weight, bias);
        int k = weight.dim(1);
        int h = weight.dim(0) / 2;
        long rows = x.numel() / k;
        int code = at.code(x.dtype());
        NativeTensor wt = weightT(weight);
        try (NativeTensor x2 = at.view(n(x), new long[] {rows, k});
             NativeTensor wa = at.narrow(wt, 1, 0, h);
             NativeTensor wb = at.narrow(wt, 1, h, h);
             NativeTensor a = at.empty(new long[] {rows, h}, code);
             NativeTensor b = at.empty(new long[] {rows, h}, code)) {
            try (NativeTensor ba = bias == null ? null : at.narrow(n(bias), 0, 0, h);
                 NativeTensor bb = bias == null ? null : at.narrow(n(bias), 0, h, h)) {
                linearOut(a, x2, wa, ba);
                linearOut(b, x2, wb, bb);
            }
            Shape outShape = x.shape().withLast(h);
            try (NativeTensor g = geluOf(b, GeluApproximation.NONE);
                 NativeTensor product = at.binary("aten::mul", "Tensor", a, g)) {
                return wrap(s, at.view(product, outShape.dimsLong()), outShape, x.dtype());
            }
        }
    }

    /** The two halves written in place into one (.., 2H) result (ATen's out= overloads): no concatenation pass. */
    @Override
    public Tensor gegluBackward(Scope s, Tensor dOut, Tensor x) {
        sameFloat("gegluBackward", dOut, x);
        int h = Backend.gegluHalf("gegluBackward", x, dOut);
        int last = x.rank() - 1;
        NativeTensor dx = at.empty(x.shape().dimsLong(), at.code(x.dtype()));
        try (NativeTensor a = at.narrow(n(x), last, 0, h); NativeTensor b = at.narrow(n(x), last, h, h);
             NativeTensor da = at.narrow(dx, last, 0, h); NativeTensor db = at.narrow(dx, last, h, h)) {
            try (NativeTensor g = geluOf(b, GeluApproximation.NONE)) {
                intoOut("aten::mul", "out", da, n(dOut), g);                           // dOut · gelu(b)
            }
            try (NativeTensor dg = at.binary("aten::mul", "Tensor", n(dOut), a);
                 Dispatch d = at.dispatch("aten::gelu_backward", "grad_input")) {     // gelu'(b) · dOut · a
                d.tensor(dg).tensor(b).str(approximate(GeluApproximation.NONE)).tensor(db).call1().close();
            }
        } catch (RuntimeException e) {
            dx.close();
            throw e;
        }
        return wrap(s, dx, x.shape(), x.dtype());
    }

    /** {@code op.overload(args..., out=out)}: an out= overload writing into {@code out} (a view may be given). */
    private void intoOut(String op, String overload, NativeTensor out, NativeTensor... args) {
        try (Dispatch d = at.dispatch(op, overload)) {
            for (NativeTensor t : args) {
                d.tensor(t);
            }
            d.tensor(out).call1().close();
        }
    }

    private static final double QUICK_GELU = 1.702;

    @Override
    public Tensor quickGelu(Scope s, Tensor x) {
        sameFloat("quickGelu", x);
        try (NativeTensor ax = at.mulScalar(n(x), QUICK_GELU); NativeTensor sig = at.unary("aten::sigmoid", ax)) {
            return wrap(s, at.binary("aten::mul", "Tensor", n(x), sig), x.shape(), x.dtype());
        }
    }

    @Override
    public Tensor quickGeluBackward(Scope s, Tensor dOut, Tensor x) {
        sameFloat("quickGeluBackward", dOut, x);
        // d/dx [x σ(a x)] = σ(a x) + a x σ(a x)(1 - σ(a x)); sigmoid_backward(g, y) = g y (1 - y).
        try (NativeTensor ax = at.mulScalar(n(x), QUICK_GELU);
             NativeTensor sig = at.unary("aten::sigmoid", ax);
             NativeTensor term = at.binary("aten::sigmoid_backward", "", ax, sig);
             NativeTensor inner = at.add(sig, term, 1.0)) {
            return wrap(s, at.binary("aten::mul", "Tensor", n(dOut), inner), x.shape(), x.dtype());
        }
    }

    // ---- matrix products --------------------------------------------------------------------------------

    @Override
    public Tensor matmul(Scope s, Tensor a, Tensor b, boolean transA, boolean transB) {
        sameFloat("matmul", a, b);
        require((a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3) && !(a.rank() == 2 && b.rank() == 3),
                "matmul", "expects (M,K)x(K,N), (B,M,K)x(B,K,N) or (B,M,K)x(K,N)", a, b);
        int m = transA ? a.dim(-1) : a.dim(-2);
        int k = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2);
        int nn = transB ? b.dim(-2) : b.dim(-1);
        require(k == kb, "matmul", "inner dimensions " + k + " and " + kb + " differ", a, b);
        try (NativeTensor av = transA ? at.transpose(n(a), -2, -1) : n(a).share();
             NativeTensor bv = transB ? at.transpose(n(b), -2, -1) : n(b).share()) {
            if (a.rank() == 2) {
                return mmInto(s, Shape.of(m, nn), a.dtype(), out -> at.mmOut(out, av, bv));
            }
            int batch = a.dim(0);
            if (b.rank() == 3) {
                require(b.dim(0) == batch, "matmul", "batch sizes differ", a, b);
                return mmInto(s, Shape.of(batch, m, nn), a.dtype(), out -> at.bmmOut(out, av, bv));
            }
            if (!transA) {
                // (B, M, K) x (K, N): one GEMM over B*M rows.
                try (NativeTensor a2 = at.view(av, new long[] {(long) batch * m, k})) {
                    return gemmAs(s, (long) batch * m, nn, a.dtype(), out -> at.mmOut(out, a2, bv),
                            Shape.of(batch, m, nn));
                }
            }
            try (NativeTensor be = at.expand(bv, new long[] {batch, k, nn})) {
                return mmInto(s, Shape.of(batch, m, nn), a.dtype(), out -> at.bmmOut(out, av, be));
            }
        }
    }

    /** A new tensor of {@code shape} written by {@code kernel} (freed again when the kernel fails). */
    private Tensor mmInto(Scope s, Shape shape, DType dtype, Consumer<NativeTensor> kernel) {
        NativeTensor out = at.empty(shape.dimsLong(), at.code(dtype));
        try {
            kernel.accept(out);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return wrap(s, out, shape, dtype);
    }

    /**
     * A (rows, cols) product written by {@code kernel} into a new tensor, returned viewed as {@code shape} (the
     * leading dimensions of a flattened operand put back); the 2-D tensor is closed, the view keeps its storage.
     */
    private Tensor gemmAs(Scope s, long rows, long cols, DType dtype, Consumer<NativeTensor> kernel, Shape shape) {
        NativeTensor out = at.empty(new long[] {rows, cols}, at.code(dtype));
        try (out) {
            kernel.accept(out);
            return wrap(s, at.view(out, shape.dimsLong()), shape, dtype);
        }
    }

    /** Closes the non-null tensors (results made before a failure). */
    private static void closeQuietly(Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null) {
                t.close();
            }
        }
    }

    /** {@code out = x2·wt (+ bias)}: x2 (M, K), wt (K, N) a view of Wᵀ, bias (N) or null (in the GEMM's epilogue). */
    private void linearOut(NativeTensor out, NativeTensor x2, NativeTensor wt, NativeTensor bias) {
        if (bias == null) {
            at.mmOut(out, x2, wt);
        } else {
            at.addmmOut(out, bias, x2, wt, 1.0, 1.0);
        }
    }

    /** Wᵀ of a linear layer's weight: kept on the weight's tensor (a view; the tensor owns and closes it). */
    private NativeTensor weightT(Tensor weight) {
        n(weight); // belongs to this backend
        return ((TorchTensor) weight).transposedView(at);
    }

    /** Two GEMMs: h = x · downᵀ, then out = y + scale · h · upᵀ as one addmm (the scaled addition in its epilogue). */
    @Override
    public LoraResult loraAdd(Scope s, Tensor y, Tensor x, Tensor down, Tensor up, double scale) {
        sameFloat("loraAdd", y, x, down, up);
        Backend.checkLora("loraAdd", y, x, down, up);
        int k = x.dim(-1);
        int n = y.dim(-1);
        int r = down.dim(0);
        long m = x.numel() / k;
        int code = at.code(x.dtype());
        Tensor h = null;
        NativeTensor dT = weightT(down);
        NativeTensor uT = weightT(up);
        try (NativeTensor x2 = at.view(n(x), new long[] {m, k}); NativeTensor y2 = at.view(n(y), new long[] {m, n})) {
            Shape hShape = x.shape().withLast(r);
            NativeTensor h2 = at.empty(new long[] {m, r}, code);
            try (h2) {
                at.mmOut(h2, x2, dT);
                h = wrap(s, at.view(h2, hShape.dimsLong()), hShape, x.dtype());
                return new LoraResult(gemmAs(s, m, n, y.dtype(), out -> at.addmmOut(out, y2, h2, uT, 1.0, scale),
                        y.shape()), h);
            }
        } catch (RuntimeException e) {
            closeQuietly(h);
            throw e;
        }
    }

    /** One addmm on flattened views: weight + scale · up · down, accumulated in fp32 and rounded once. */
    @Override
    public Tensor loraMerge(Scope s, Tensor weight, Tensor down, Tensor up, double scale) {
        sameFloat("loraMerge", weight, down, up);
        Backend.checkLoraMerge(weight, down, up);
        int n = weight.dim(0);
        int r = down.dim(0);
        long k = weight.numel() / n;
        try (NativeTensor w2 = at.view(n(weight), new long[] {n, k}); NativeTensor d2 = at.view(n(down), new long[] {r, k});
             NativeTensor u2 = at.view(n(up), new long[] {n, r})) {
            return gemmAs(s, n, k, weight.dtype(), out -> at.addmmOut(out, w2, u2, d2, 1.0, scale), weight.shape());
        }
    }

    /** Four GEMMs at most, the scale folded into the two products with dOut (addmm with beta 0). */
    @Override
    public LoraGrads loraAddBackward(Scope s, Tensor dOut, Tensor x, Tensor hidden, Tensor down, Tensor up,
                                     double scale, boolean needX, boolean needDown, boolean needUp) {
        sameFloat("loraAddBackward", dOut, x, hidden, down, up);
        Backend.checkLora("loraAddBackward", dOut, x, down, up);
        int k = x.dim(-1);
        int n = dOut.dim(-1);
        int r = down.dim(0);
        long m = x.numel() / k;
        int code = at.code(dOut.dtype());
        Tensor dx = null;
        Tensor dDown = null;
        Tensor dUp = null;
        try (NativeTensor dO2 = at.view(n(dOut), new long[] {m, n}); NativeTensor h2 = at.view(n(hidden), new long[] {m, r});
             NativeTensor x2 = at.view(n(x), new long[] {m, k})) {
            if (needUp) {
                try (NativeTensor dOT = at.transpose(dO2, 0, 1)) {
                    dUp = mmInto(s, Shape.of(n, r), up.dtype(), out -> at.addmmOut(out, out, dOT, h2, 0.0, scale));
                }
            }
            if (needX || needDown) {
                NativeTensor dh = at.empty(new long[] {m, r}, code);                 // scale · dOut · up
                try (dh) {
                    at.addmmOut(dh, dh, dO2, n(up), 0.0, scale);
                    if (needDown) {
                        try (NativeTensor dhT = at.transpose(dh, 0, 1)) {
                            dDown = mmInto(s, Shape.of(r, k), down.dtype(), out -> at.mmOut(out, dhT, x2));
                        }
                    }
                    if (needX) {
                        dx = gemmAs(s, m, k, x.dtype(), out -> at.mmOut(out, dh, n(down)), x.shape());
                    }
                }
            }
            return new LoraGrads(dx, dDown, dUp);
        } catch (RuntimeException e) {
            closeQuietly(dx, dDown, dUp);
            throw e;
        }
    }

    /** The flattening as ATen views, not engine ops: per layer two GEMMs and, with a bias, one sum. */
    @Override
    public LayerGrads linearBackward(Scope s, Tensor dy, Tensor x, Tensor weight, OutputMask mask) {
        sameFloat("linearBackward", dy, x, weight);
        Backend.checkLinearBackward(dy, x, weight);
        int n = dy.dim(-1);
        int k = x.dim(-1);
        long m = dy.numel() / n;
        Tensor dx = null;
        Tensor dw = null;
        Tensor db = null;
        try (NativeTensor dy2 = at.view(n(dy), new long[] {m, n})) {
            if (mask.input()) {
                dx = gemmAs(s, m, k, dy.dtype(), out -> at.mmOut(out, dy2, n(weight)), x.shape());
            }
            if (mask.weight()) {
                try (NativeTensor x2 = at.view(n(x), new long[] {m, k});
                     NativeTensor dyT = at.transpose(dy2, 0, 1)) {
                    dw = mmInto(s, Shape.of(n, k), dy.dtype(), out -> at.mmOut(out, dyT, x2));
                }
            }
            if (mask.bias()) {
                db = wrap(s, reduceOf("aten::sum", "dim_IntList", dy2, new long[] {0}, false), Shape.of(n), dy.dtype());
            }
            return new LayerGrads(dx, dw, db);
        } catch (RuntimeException e) {
            closeQuietly(dx, dw, db);
            throw e;
        }
    }

    @Override
    public Tensor linear(Scope s, Tensor x, Tensor weight, Tensor bias) {
        sameFloat("linear", x, weight, bias);
        require(weight.rank() == 2 && x.dim(-1) == weight.dim(1), "linear", "x (.., K) needs weight (N, K)", x, weight);
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == weight.dim(0)), "linear", "bias must be (N)", weight,
                bias);
        int k = weight.dim(1);
        int nOut = weight.dim(0);
        long rows = x.numel() / k;
        Shape outShape = x.shape().withLast(nOut);
        NativeTensor wt = weightT(weight);
        try (NativeTensor x2 = at.view(n(x), new long[] {rows, k})) {
            return gemmAs(s, rows, nOut, x.dtype(), out -> linearOut(out, x2, wt, bias == null ? null : n(bias)),
                    outShape);
        }
    }

    // ---- convolution ------------------------------------------------------------------------------------

    @Override
    public Tensor convolution(Scope s, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        sameFloat("convolution", x, weight, bias);
        require(x.rank() == 4 && weight.rank() == 4 && x.dim(1) == weight.dim(1), "convolution",
                "expects x (N, C, H, W) and weight (O, C, kH, kW)", x, weight);
        return wrap(s, at.convolution(n(x), n(weight), bias == null ? null : n(bias), stride, padding), x.dtype());
    }

    @Override
    public LayerGrads convolutionBackward(Scope s, Tensor dOut, Tensor x, Tensor weight, int stride, int padding,
                                          OutputMask mask) {
        sameFloat("convolutionBackward", dOut, x, weight);
        boolean[] m = {mask.input(), mask.weight(), mask.bias()};
        NativeTensor[] g = at.convolutionBackward(n(dOut), n(x), n(weight), mask.bias() ? weight.dim(0) : -1, stride,
                padding, m);
        return grads(s, g, x.dtype());
    }

    private LayerGrads grads(Scope s, NativeTensor[] g, DType dtype) {
        Tensor[] t = new Tensor[3];
        try {
            for (int i = 0; i < 3; i++) {
                if (g[i] != null) {
                    NativeTensor gi = g[i];
                    g[i] = null;
                    t[i] = wrap(s, at.contiguousConsuming(gi), dtype);
                }
            }
        } catch (RuntimeException e) {
            NativeTensor.closeAll(g);
            for (Tensor ti : t) {
                if (ti != null) {
                    ti.close();
                }
            }
            throw e;
        }
        return new LayerGrads(t[0], t[1], t[2]);
    }

    // ---- normalisation ------------------------------------------------------------------------------------

    @Override
    public NormResult groupNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        sameFloat("groupNorm", x, gamma, beta);
        require(x.rank() >= 2 && x.dim(1) % groups == 0, "groupNorm", "channels not divisible into " + groups + " groups", x);
        long nBatch = x.dim(0);
        long c = x.dim(1);
        long hw = x.numel() / (nBatch * c);
        try (Dispatch d = at.dispatch("aten::native_group_norm", "")) {
            NativeTensor[] r = d.tensor(n(x)).optTensor(gamma == null ? null : n(gamma))
                    .optTensor(beta == null ? null : n(beta)).i(nBatch).i(c).i(hw).i(groups).f(eps).call(3);
            return norm(s, r, x.dtype());
        }
    }

    /**
     * On CUDA, with fp32 gamma/beta: the statistics of x (widened to fp32 when it has 16 bits) by one reduction over
     * each group ({@code var_mean}, which spreads a group over many blocks; {@code native_group_norm}'s moments kernel
     * gives each of the N·G groups one block: 64 blocks for the SDXL U-Net at batch 2 on 132 SMs, 32 blocks of 4
     * million values each for the fp32 VAE's 1024x1024 levels at batch 1), then
     * {@code native_batch_norm} in inference mode on x viewed as (1, N·C, ..) with those statistics per (n, c): one
     * pass that reads x in its dtype, computes {@code (x - mean) · rsqrt(var + eps) · gamma + beta} in fp32 and
     * rounds once. The same values as the default (widen, group norm, narrow) up to the order of the sums; no
     * fp32 result is written or read back. Elsewhere, or if libtorch refuses it, the default.
     */
    @Override
    public Tensor groupNormInference32(Scope s, Tensor x, Tensor gamma32, Tensor beta32, int groups, double eps) {
        boolean applies = groupNormByStatistics && x.dtype().isFloat()
                && gamma32 != null && beta32 != null && gamma32.dtype() == DType.F32 && beta32.dtype() == DType.F32
                && x.rank() >= 2 && x.dim(1) % groups == 0 && n(x).isContiguous();
        if (applies) {
            try {
                return groupNormByStatistics(s, x, gamma32, beta32, groups, eps);
            } catch (TorchException e) {
                groupNormByStatistics = false;   // this libtorch cannot: the default from now on
                System.getLogger("tenmin.torch").log(System.Logger.Level.WARNING, "group norm by statistics refused"
                        + " by libtorch, using native_group_norm: " + e.getMessage());
            }
        }
        return Backend.super.groupNormInference32(s, x, gamma32, beta32, groups, eps);
    }

    /**
     * Tests: take (or not) the inference formulations CUDA takes ({@link #groupNormInference32}'s statistics path,
     * {@link #linearGeglu}'s split) on this backend's device.
     */
    void preferInferenceKernels(boolean on) {
        groupNormByStatistics = on;
        splitGeglu = on;
    }

    /** Tests: whether that path is taken (false once libtorch refused it). */
    boolean groupNormByStatistics() {
        return groupNormByStatistics;
    }

    private Tensor groupNormByStatistics(Scope s, Tensor x, Tensor gamma32, Tensor beta32, int groups, double eps) {
        long nBatch = x.dim(0);
        long c = x.dim(1);
        long hw = x.numel() / (nBatch * c);
        long perGroup = c / groups;
        int f32 = at.code(DType.F32);
        boolean narrow = x.dtype() != DType.F32;
        NativeTensor wide = narrow ? at.empty(x.shape().dimsLong(), f32) : at.view(n(x), x.shape().dimsLong());
        try (wide) {
            if (narrow) {
                at.copyInto(wide, n(x));
            }
            NativeTensor[] varMean;
            try (NativeTensor rows = at.view(wide, new long[] {nBatch * groups, perGroup * hw});
                 Dispatch d = at.dispatch("aten::var_mean", "dim")) {
                varMean = d.tensor(rows).optInts(new long[] {1}).b(false).b(false).call(2);
            }
            try (NativeTensor var = varMean[0];
                 NativeTensor mean = varMean[1];
                 NativeTensor varC = at.repeated(var, nBatch * groups, perGroup, true);   // per (n, c)
                 NativeTensor meanC = at.repeated(mean, nBatch * groups, perGroup, true);
                 NativeTensor w = at.repeated(n(gamma32), c, nBatch, false);
                 NativeTensor b = at.repeated(n(beta32), c, nBatch, false);
                 NativeTensor in = at.view(n(x), new long[] {1, nBatch * c, hw});
                 Dispatch d = at.dispatch("aten::native_batch_norm", "")) {
                NativeTensor[] r = d.tensor(in).optTensor(w).optTensor(b).optTensor(meanC).optTensor(varC).b(false)
                        .f(0.0).f(eps).call(3);
                r[1].close();
                r[2].close();
                NativeTensor y;
                try (NativeTensor flat = r[0]) {
                    y = at.view(flat, x.shape().dimsLong());
                }
                return wrap(s, y, x.shape(), x.dtype());
            }
        }
    }

    /**
     * The forward results as contract tensors: y in the input dtype; mean and rstd always fp32 (as the
     * {@code cpu} backend). ATen keeps bf16/fp16 statistics on some devices; then the fp32 tensor carries
     * the kernel's own copy as an extra, which {@link #stat} hands back to the backward kernel.
     */
    private NormResult norm(Scope s, NativeTensor[] r, DType dtype) {
        Tensor y = null;
        Tensor mean = null;
        try {
            y = wrap(s, at.contiguousConsuming(takeAt(r, 0)), dtype);
            mean = statistic(s, takeAt(r, 1));
            Tensor rstd = statistic(s, takeAt(r, 2));
            return new NormResult(y, mean, rstd);
        } catch (RuntimeException e) {
            NativeTensor.closeAll(r);
            if (y != null) {
                y.close();
            }
            if (mean != null) {
                mean.close();
            }
            throw e;
        }
    }

    private Tensor statistic(Scope s, NativeTensor nativeStat) {
        if (nativeStat.dtypeCode() == at.shim.dtypeF32) {
            return wrap(s, at.contiguousConsuming(nativeStat), DType.F32);
        }
        NativeTensor f32 = at.empty(nativeStat.sizes(), at.shim.dtypeF32);
        try {
            at.copyInto(f32, nativeStat);
        } catch (RuntimeException e) {
            NativeTensor.closeAll(f32, nativeStat);
            throw e;
        }
        return wrap(s, f32, shapeOf(f32), DType.F32, null, nativeStat);
    }

    /** The statistic as the forward kernel produced it (see {@link #norm}). */
    private NativeTensor stat(Tensor t) {
        NativeTensor data = n(t);
        NativeTensor[] extras = ((TorchTensor) t).extras();
        return extras.length > 0 ? extras[0] : data;
    }

    private static NativeTensor takeAt(NativeTensor[] r, int i) {
        NativeTensor t = r[i];
        r[i] = null;
        return t;
    }

    @Override
    public LayerGrads groupNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, int groups,
                                       OutputMask mask) {
        sameFloat("groupNormBackward", dOut, x, gamma);
        long nBatch = x.dim(0);
        long c = x.dim(1);
        long hw = x.numel() / (nBatch * c);
        boolean affine = gamma != null;
        try (Dispatch d = at.dispatch("aten::native_group_norm_backward", "")) {
            NativeTensor[] r = d.tensor(n(dOut)).tensor(n(x)).tensor(stat(forward.mean())).tensor(stat(forward.rstd()))
                    .optTensor(affine ? n(gamma) : null).i(nBatch).i(c).i(hw).i(groups)
                    .bools(mask.input(), mask.weight() && affine, mask.bias() && affine).call(3);
            return grads(s, maskOut(r, mask.input(), mask.weight() && affine, mask.bias() && affine), x.dtype());
        }
    }

    /** Drops results the mask did not ask for (ATen returns undefined tensors there). */
    private static NativeTensor[] maskOut(NativeTensor[] r, boolean... wanted) {
        for (int i = 0; i < r.length; i++) {
            if (!wanted[i] && r[i] != null) {
                r[i].close();
                r[i] = null;
            }
        }
        return r;
    }

    @Override
    public NormResult layerNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, double eps) {
        sameFloat("layerNorm", x, gamma, beta);
        try (Dispatch d = at.dispatch("aten::native_layer_norm", "")) {
            NativeTensor[] r = d.tensor(n(x)).ints(x.dim(-1)).optTensor(gamma == null ? null : n(gamma))
                    .optTensor(beta == null ? null : n(beta)).f(eps).call(3);
            return norm(s, r, x.dtype());
        }
    }

    @Override
    public LayerGrads layerNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma,
                                        OutputMask mask) {
        sameFloat("layerNormBackward", dOut, x, gamma);
        boolean affine = gamma != null;
        // The bias argument only tells ATen that dBias exists; gamma has its shape and dtype.
        try (Dispatch d = at.dispatch("aten::native_layer_norm_backward", "")) {
            NativeTensor[] r = d.tensor(n(dOut)).tensor(n(x)).ints(x.dim(-1)).tensor(stat(forward.mean()))
                    .tensor(stat(forward.rstd())).optTensor(affine ? n(gamma) : null).optTensor(affine ? n(gamma) : null)
                    .bools(mask.input(), mask.weight() && affine, mask.bias() && affine).call(3);
            return grads(s, maskOut(r, mask.input(), mask.weight() && affine, mask.bias() && affine), x.dtype());
        }
    }

    // ---- attention ---------------------------------------------------------------------------------------

    @Override
    public AttentionResult attention(Scope s, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        sameFloat("attention", q, k, v);
        require(q.rank() == 4 && k.rank() == 4 && v.rank() == 4 && q.dim(-1) == k.dim(-1) && k.dim(2) == v.dim(2),
                "attention", "expects q (N, h, Tq, D), k (N, h, Tk, D), v (N, h, Tk, Dv)", q, k, v);
        AtenAttention.Forward f = attention.forward(n(q), n(k), n(v), causal, scale);
        return attentionResult(s, f, q.shape().withLast(v.dim(-1)), Shape.of(q.dim(0), q.dim(1), q.dim(2)), q.dtype());
    }

    /** Wraps a forward's output and its log-sum-exp, which carries the kernel's saved state and name. */
    private AttentionResult attentionResult(Scope s, AtenAttention.Forward f, Shape outShape, Shape lseShape,
                                            DType dtype) {
        Tensor out = null;
        try {
            out = wrap(s, f.out(), outShape, dtype);
            TorchTensor lse = wrap(s, f.lse(), lseShape, DType.F32, null, f.saved());
            lse.attentionKernel(f.kernel());
            return new AttentionResult(out, lse);
        } catch (RuntimeException e) {
            if (out != null) {
                out.close();
            } else {
                NativeTensor.closeAll(f.out());
            }
            throw e;
        }
    }

    /** The log-sum-exp of a forward of this backend's attention (its kernel state rides on it). */
    private static TorchTensor attentionLse(String op, AttentionResult forward) {
        if (!(forward.logSumExp() instanceof TorchTensor lse) || lse.extras().length == 0) {
            throw new IllegalArgumentException(op + ": the forward result was not made by this backend's attention ("
                    + forward.logSumExp().describe() + ")");
        }
        return lse;
    }

    @Override
    public AttentionGrads attentionBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, AttentionResult forward,
                                            boolean causal, double scale) {
        sameFloat("attentionBackward", dOut, q, k, v);
        TorchTensor lse = attentionLse("attentionBackward", forward);
        NativeTensor[] g = attention.backward(n(dOut), n(q), n(k), n(v), n(forward.out()), lse.extras(),
                lse.attentionKernel(), causal, scale);
        LayerGrads lg = grads(s, g, q.dtype());
        return new AttentionGrads(lg.dx(), lg.dWeight(), lg.dBias());
    }

    /** The heads as strided views of (N, T, h·D) (no copy; the fused kernels read them), and the output merged. */
    @Override
    public AttentionResult attentionHeads(Scope s, Tensor q, Tensor k, Tensor v, int heads, boolean causal,
                                          double scale) {
        sameFloat("attentionHeads", q, k, v);
        Backend.checkHeads("attentionHeads", heads, q, k, v);
        AtenAttention.Forward f;
        try (NativeTensor qh = headsView(q, heads); NativeTensor kh = headsView(k, heads);
             NativeTensor vh = headsView(v, heads)) {
            f = attention.forward(qh, kh, vh, causal, scale, true);
        }
        return attentionResult(s, f, Shape.of(q.dim(0), q.dim(1), v.dim(2)), Shape.of(q.dim(0), heads, q.dim(1)),
                q.dtype());
    }

    @Override
    public AttentionGrads attentionHeadsBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, int heads,
                                                 AttentionResult forward, boolean causal, double scale) {
        sameFloat("attentionHeadsBackward", dOut, q, k, v);
        Backend.checkHeads("attentionHeadsBackward", heads, q, k, v);
        TorchTensor lse = attentionLse("attentionHeadsBackward", forward);
        NativeTensor[] g;
        try (NativeTensor dh = headsView(dOut, heads); NativeTensor qh = headsView(q, heads);
             NativeTensor kh = headsView(k, heads); NativeTensor vh = headsView(v, heads);
             NativeTensor oh = headsView(forward.out(), heads)) {
            g = attention.backward(dh, qh, kh, vh, oh, lse.extras(), lse.attentionKernel(), causal, scale, true);
        }
        LayerGrads lg = grads(s, g, q.dtype());
        return new AttentionGrads(lg.dx(), lg.dWeight(), lg.dBias());
    }

    /** (N, T, h·D) → an (N, h, T, D) view of the same storage (strided: no copy). */
    private NativeTensor headsView(Tensor x, int heads) {
        try (NativeTensor r = at.view(n(x), new long[] {x.dim(0), x.dim(1), heads, x.dim(2) / heads})) {
            return at.transpose(r, 1, 2);
        }
    }

    // ---- resampling ----------------------------------------------------------------------------------------

    @Override
    public Tensor upsampleNearest2x(Scope s, Tensor x) {
        sameFloat("upsampleNearest2x", x);
        require(x.rank() == 4, "upsampleNearest2x", "expects (N, C, H, W)", x);
        try (Dispatch d = at.dispatch("aten::upsample_nearest2d", "")) {
            return wrap(s, d.tensor(n(x)).ints(2L * x.dim(2), 2L * x.dim(3)).none().none().call1(), x.dtype());
        }
    }

    @Override
    public Tensor upsampleNearest2xBackward(Scope s, Tensor dOut) {
        sameFloat("upsampleNearest2xBackward", dOut);
        require(dOut.rank() == 4 && dOut.dim(2) % 2 == 0 && dOut.dim(3) % 2 == 0, "upsampleNearest2xBackward",
                "expects (N, C, 2H, 2W)", dOut);
        try (Dispatch d = at.dispatch("aten::upsample_nearest2d_backward", "")) {
            return wrap(s, d.tensor(n(dOut)).ints(dOut.dim(2), dOut.dim(3))
                    .ints(dOut.dim(0), dOut.dim(1), dOut.dim(2) / 2, dOut.dim(3) / 2).none().none().call1(), dOut.dtype());
        }
    }

    // ---- reductions and loss ----------------------------------------------------------------------------------

    @Override
    public Tensor sum(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, "aten::sum", "dim_IntList", x, dims, keepDim);
    }

    @Override
    public Tensor mean(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, "aten::mean", "dim", x, dims, keepDim);
    }

    private Tensor reduce(Scope s, String op, String overload, Tensor x, int[] dims, boolean keepDim) {
        sameFloat(op, x);
        long[] axes;
        if (dims.length == 0) {
            axes = new long[x.rank()];
            for (int i = 0; i < axes.length; i++) {
                axes[i] = i;
            }
        } else {
            axes = new long[dims.length];
            for (int i = 0; i < dims.length; i++) {
                axes[i] = x.shape().axis(dims[i]);
            }
        }
        return wrap(s, reduceOf(op, overload, n(x), axes, keepDim), x.dtype());
    }

    /** {@code op} (sum or mean over {@code axes}, dtype kept) of a native tensor. */
    private NativeTensor reduceOf(String op, String overload, NativeTensor x, long[] axes, boolean keepDim) {
        try (Dispatch d = at.dispatch(op, overload)) {
            return d.tensor(x).optInts(axes).b(keepDim).none().call1();
        }
    }

    @Override
    public Tensor mseLoss(Scope s, Tensor pred, Tensor target) {
        sameFloat("mseLoss", pred, target);
        require(pred.shape().equals(target.shape()), "mseLoss", "shapes differ", pred, target);
        try (Dispatch d = at.dispatch("aten::mse_loss", "")) {
            return wrap(s, d.tensor(n(pred)).tensor(n(target)).i(1).call1(), Shape.scalar(), pred.dtype());
        }
    }

    @Override
    public Tensor mseLossBackward(Scope s, Tensor dLoss, Tensor pred, Tensor target) {
        sameFloat("mseLossBackward", dLoss, pred, target);
        try (Dispatch d = at.dispatch("aten::mse_loss_backward", "")) {
            return wrap(s, d.tensor(n(dLoss)).tensor(n(pred)).tensor(n(target)).i(1).call1(), pred.shape(),
                    pred.dtype());
        }
    }

    // ---- embeddings -------------------------------------------------------------------------------------------

    @Override
    public Tensor embedding(Scope s, Tensor weight, Tensor ids) {
        sameFloat("embedding", weight);
        require(weight.rank() == 2 && ids.dtype() == DType.I64, "embedding", "expects weight (V, D) and i64 ids", weight,
                ids);
        try (Dispatch d = at.dispatch("aten::embedding", "")) {
            int[] dims = new int[ids.rank() + 1];
            for (int i = 0; i < ids.rank(); i++) {
                dims[i] = ids.dim(i);
            }
            dims[ids.rank()] = weight.dim(1);
            return wrap(s, d.tensor(n(weight)).tensor(n(ids)).i(-1).b(false).b(false).call1(), Shape.of(dims),
                    weight.dtype());
        }
    }

    @Override
    public Tensor embeddingBackward(Scope s, Tensor dOut, Tensor ids, int numEmbeddings) {
        sameFloat("embeddingBackward", dOut);
        try (Dispatch d = at.dispatch("aten::embedding_dense_backward", "")) {
            return wrap(s, d.tensor(n(dOut)).tensor(n(ids)).i(numEmbeddings).i(-1).b(false).call1(),
                    Shape.of(numEmbeddings, dOut.dim(-1)), dOut.dtype());
        }
    }

    @Override
    public Tensor sinusoidalEmbedding(Scope s, Tensor values, int dim) {
        require(values.rank() == 1 && dim > 0 && dim % 2 == 0, "sinusoidalEmbedding",
                "expects values (N) and an even dim, got dim " + dim, values);
        int half = dim / 2;
        // As sgm's timestep_embedding, step by step in fp32: freqs = exp(-ln(10000) * arange(half) / half),
        // computed on the host like the cpu backend and kept on the device (no upload, so no sync, per call).
        NativeTensor f = sinusoidFrequencies.computeIfAbsent(half, h -> {
            float negLog = (float) -Math.log(10000.0);
            float[] freqs = new float[h];
            for (int k = 0; k < h; k++) {
                freqs[k] = (float) Math.exp((negLog * (float) k) / (float) h);
            }
            return at.upload(freqs, new long[] {1, h}, at.shim.dtypeF32);   // once per width: a sync point
        });
        long nValues = values.dim(0);
        try (NativeTensor v32 = at.empty(new long[] {nValues, 1}, at.shim.dtypeF32);
             NativeTensor vv = at.view(n(values), new long[] {nValues, 1})) {
            at.copyInto(v32, vv);
            try (NativeTensor args = at.binary("aten::mul", "Tensor", v32, f);
                 NativeTensor cos = at.unary("aten::cos", args);
                 NativeTensor sin = at.unary("aten::sin", args)) {
                return wrap(s, at.cat(new NativeTensor[] {cos, sin}, 1), Shape.of((int) nValues, dim), DType.F32);
            }
        }
    }
}
