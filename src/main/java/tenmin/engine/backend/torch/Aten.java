package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import tenmin.engine.api.DType;
import tenmin.engine.api.Device;

/**
 * ATen kernels on one device, on {@link NativeTensor}s: tensor creation and copies through the shim,
 * operators with {@code Scalar} or optional-pointer arguments through the generated per-device entry
 * points ({@code aoti_torch_cpu_*} / {@code aoti_torch_cuda_*}, same signatures), everything else by
 * name through the dispatcher ({@link Dispatch}). Every method returns new tensors the caller owns and
 * leaves its arguments open. Dimension legend: N batch, C/O channels, H/W spatial, D head dim.
 *
 * <p>Declarations of the generated functions used here (as in {@code c_shim_cuda.h}; the CPU ones are
 * the same with {@code cpu}):
 * <pre>
 * AOTITorchError aoti_torch_cuda_convolution(AtenTensorHandle input, AtenTensorHandle weight,
 *     AtenTensorHandle* bias, const int64_t* stride, int64_t stride_len_, const int64_t* padding,
 *     int64_t padding_len_, const int64_t* dilation, int64_t dilation_len_, int32_t transposed,
 *     const int64_t* output_padding, int64_t output_padding_len_, int64_t groups, AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_convolution_backward(AtenTensorHandle grad_output, AtenTensorHandle input,
 *     AtenTensorHandle weight, const int64_t** bias_sizes, int64_t bias_sizes_len_, const int64_t* stride,
 *     int64_t stride_len_, const int64_t* padding, int64_t padding_len_, const int64_t* dilation,
 *     int64_t dilation_len_, int32_t transposed, const int64_t* output_padding, int64_t output_padding_len_,
 *     int64_t groups, const int32_t* output_mask, int64_t output_mask_len_, AtenTensorHandle* ret0,
 *     AtenTensorHandle* ret1, AtenTensorHandle* ret2);
 * AOTITorchError aoti_torch_cuda_mm_out(AtenTensorHandle out, AtenTensorHandle self, AtenTensorHandle mat2);
 * AOTITorchError aoti_torch_cuda_bmm_out(AtenTensorHandle out, AtenTensorHandle self, AtenTensorHandle mat2);
 * AOTITorchError aoti_torch_cuda_addmm_out(AtenTensorHandle out, AtenTensorHandle self, AtenTensorHandle mat1,
 *     AtenTensorHandle mat2, double beta, double alpha);
 * AOTITorchError aoti_torch_cuda_cat(const AtenTensorHandle* tensors, int64_t tensors_len_, int64_t dim,
 *     AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_add_Tensor(AtenTensorHandle self, AtenTensorHandle other, double alpha,
 *     AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_add_Scalar(AtenTensorHandle self, double other, double alpha, AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_mul_Tensor(AtenTensorHandle self, AtenTensorHandle other, AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_mul_Scalar(AtenTensorHandle self, double other, AtenTensorHandle* ret0);
 * AOTITorchError aoti_torch_cuda_fill__Scalar(AtenTensorHandle self, double value);
 * AOTITorchError aoti_torch_cuda_pad(AtenTensorHandle self, const int64_t* pad, int64_t pad_len_,
 *     const char* mode, double* value, AtenTensorHandle* ret0);
 * </pre>
 * Attention entry points are declared in {@link AtenAttention}.
 */
final class Aten {
    final Shim shim;
    final Device device;
    /** {@code cpu} or {@code cuda}: the infix of the generated entry points. */
    final String dev;
    private final int deviceType;
    private final int deviceIndex;
    /** The largest upload {@link #uploadAsync} takes (at 8 bytes per element): a training micro-batch's are 2 MiB. */
    static final long ASYNC_UPLOAD_MAX_BYTES = 16L << 20;
    /** Whether uploads go through page-locked memory without a stream sync ({@link #uploadAsync}): on CUDA. */
    private boolean asyncUploads;

    Aten(Shim shim, Device device) {
        this.shim = shim;
        this.device = device;
        this.dev = device.kind() == Device.Kind.CPU ? "cpu" : "cuda";
        this.deviceType = device.kind() == Device.Kind.CPU ? shim.deviceTypeCpu : shim.deviceTypeCuda;
        this.deviceIndex = device.index();
        this.asyncUploads = device.kind() == Device.Kind.CUDA;
    }

    /** The {@code aoti_torch_dtype_*} code of an engine dtype. */
    int code(DType t) {
        return switch (t) {
            case F32 -> shim.dtypeF32;
            case BF16 -> shim.dtypeBF16;
            case F16 -> shim.dtypeF16;
            case F8_E4M3 -> shim.dtypeF8E4M3;
            case I64 -> shim.dtypeI64;
        };
    }

    /** The engine dtype of an {@code aoti_torch_dtype_*} code. */
    DType dtypeOf(int code) {
        if (code == shim.dtypeF32) {
            return DType.F32;
        } else if (code == shim.dtypeBF16) {
            return DType.BF16;
        } else if (code == shim.dtypeF16) {
            return DType.F16;
        } else if (code == shim.dtypeF8E4M3) {
            return DType.F8_E4M3;
        } else if (code == shim.dtypeI64) {
            return DType.I64;
        }
        throw new TorchException("libtorch returned dtype code " + code + ", which the engine has no type for");
    }

    Dispatch dispatch(String op, String overload) {
        return new Dispatch(shim, op, overload);
    }

    /** A native call that writes one new tensor handle to {@code ret}; may allocate its arrays in {@code a}. */
    @FunctionalInterface
    interface OneResult {
        int invoke(Arena a, MemorySegment ret) throws Throwable;
    }

    /** Runs {@code call}, checks its error code (naming {@code op} and the argument shapes) and adopts the result. */
    NativeTensor returning(String op, OneResult call, NativeTensor... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(ADDRESS);
            int rc = call.invoke(a, ret);
            check(rc, op, args);
            return NativeTensor.adopt(shim, ret.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw Shim.rethrow(op, t);
        }
    }

    // ---- creation and copies ------------------------------------------------------------------------

    static long[] contiguousStrides(long[] sizes) {
        long[] strides = new long[sizes.length];
        long s = 1;
        for (int i = sizes.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= Math.max(sizes[i], 1);
        }
        return strides;
    }

    /** An uninitialised contiguous tensor on this device. */
    NativeTensor empty(long[] sizes, int dtype) {
        return emptyOn(sizes, dtype, deviceType, deviceIndex);
    }

    /** An uninitialised contiguous tensor in host memory. */
    NativeTensor emptyHost(long[] sizes, int dtype) {
        return emptyOn(sizes, dtype, shim.deviceTypeCpu, 0);
    }

    private NativeTensor emptyOn(long[] sizes, int dtype, int type, int index) {
        return returning("aoti_torch_empty_strided", (a, ret) -> (int) shim.emptyStrided.invokeExact(
                (long) sizes.length, longs(a, sizes), longs(a, contiguousStrides(sizes)), dtype, type, index, ret));
    }

    /** A tensor on this device viewing {@code data} (not owned: its storage must outlive the view), contiguous. */
    NativeTensor deviceView(MemorySegment data, long[] sizes, int dtype) {
        return viewOn(data, sizes, dtype, deviceType, deviceIndex);
    }

    /** A host tensor viewing {@code data} (not owned: {@code data} must outlive it), contiguous. */
    NativeTensor hostView(MemorySegment data, long[] sizes, int dtype) {
        return viewOn(data, sizes, dtype, shim.deviceTypeCpu, 0);
    }

    private NativeTensor viewOn(MemorySegment data, long[] sizes, int dtype, int type, int index) {
        return returning("aoti_torch_create_tensor_from_blob", (a, ret) -> (int) shim.createTensorFromBlob.invokeExact(
                data, (long) sizes.length, longs(a, sizes), longs(a, contiguousStrides(sizes)), 0L, dtype, type, index,
                ret));
    }

    /** {@code dst.copy_(src)}: converts dtype, crosses devices, broadcasts src. Synchronous. */
    void copyInto(NativeTensor dst, NativeTensor src) {
        copy(dst, src, false);
    }

    /** Uploads host floats into a new tensor of {@code dtype} on this device (rounding to nearest even). */
    NativeTensor upload(float[] data, long[] sizes, int dtype) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_FLOAT, data);
            return uploadRaw(host, sizes, shim.dtypeF32, dtype);
        }
    }

    /** Uploads host longs into a new int64 tensor on this device. */
    NativeTensor upload(long[] data, long[] sizes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocateFrom(JAVA_LONG, data.length == 0 ? new long[1] : data);
            return uploadRaw(host, sizes, shim.dtypeI64, shim.dtypeI64);
        }
    }

    /**
     * Uploads native host memory holding elements of {@code hostDtype} into a new tensor of {@code dtype}; the
     * memory may be reused as soon as this returns. On CUDA without a stream sync ({@link #uploadAsync}), else a
     * synchronous copy.
     */
    NativeTensor uploadRaw(MemorySegment host, long[] sizes, int hostDtype, int dtype) {
        NativeTensor out = empty(sizes, dtype);
        try (NativeTensor view = hostView(host, sizes, hostDtype)) {
            if (!uploadAsync(out, view)) {
                copyInto(out, view);
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /**
     * On CUDA: the host tensor copied into page-locked memory from libtorch's caching host allocator, then copied to
     * the device with {@code non_blocking} (via a device tensor of the host's dtype when {@code dst}'s differs), so
     * the upload queues behind the work already issued instead of waiting for it (a blocking copy synchronizes the
     * stream: every upload at the start of a training micro-batch waited for the one before to finish). The
     * allocator keeps the page-locked block until the copy is done ({@code copy_} records an event on it), so it is
     * released here at once. False where it does not apply (not CUDA, more than {@link #ASYNC_UPLOAD_MAX_BYTES}, or
     * page-locking failed: said once), and the caller copies synchronously: large uploads (a checkpoint's weights)
     * would make the allocator page-lock gigabytes while their copies are in flight.
     */
    private boolean uploadAsync(NativeTensor dst, NativeTensor hostView) {
        if (!asyncUploads || numel(hostView.sizes()) * 8 > ASYNC_UPLOAD_MAX_BYTES) {
            return false;
        }
        NativeTensor pinned;
        try {
            pinned = pinned(hostView);
        } catch (RuntimeException e) {
            asyncUploads = false;
            System.err.println("WARNING: uploads to " + device + " wait for the device: could not page-lock host memory ("
                    + e.getMessage() + ")");
            return false;
        }
        try (pinned) {
            int hostDtype = hostView.dtypeCode();
            if (hostDtype == dst.dtypeCode()) {
                copyIntoAsync(dst, pinned);
            } else {
                try (NativeTensor same = empty(hostView.sizes(), hostDtype)) {
                    copyIntoAsync(same, pinned);
                    copyInto(dst, same);                            // device to device: queued, no host wait
                }
            }
        }
        return true;
    }

    /** A copy of host tensor {@code host} in page-locked memory from libtorch's caching host allocator (CUDA only). */
    NativeTensor pinned(NativeTensor host) {
        try (Dispatch d = dispatch("aten::pin_memory", "")) {
            return d.tensor(host).none().call1();
        }
    }

    /** {@code dst.copy_(src, non_blocking=True)}. */
    private void copyIntoAsync(NativeTensor dst, NativeTensor src) {
        copy(dst, src, true);
    }

    private void copy(NativeTensor dst, NativeTensor src, boolean nonBlocking) {
        try {
            int rc = (int) shim.copy.invokeExact(dst.handle(), src.handle(), nonBlocking ? 1 : 0);
            Shim.check(rc, nonBlocking ? "aoti_torch_copy_ (non_blocking)" : "aoti_torch_copy_");
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_copy_", t);
        }
    }

    /** Downloads any floating tensor as fp32, row-major (a sync point). */
    float[] downloadFloats(NativeTensor t) {
        try (Arena a = Arena.ofConfined()) {
            return download(a, t, java.lang.foreign.ValueLayout.JAVA_FLOAT, shim.dtypeF32)
                    .toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
        }
    }

    /** Downloads an int64 tensor, row-major (a sync point). */
    long[] downloadLongs(NativeTensor t) {
        try (Arena a = Arena.ofConfined()) {
            return download(a, t, JAVA_LONG, shim.dtypeI64).toArray(JAVA_LONG);
        }
    }

    /** Copies {@code t} (converting to {@code hostDtype}) into host memory of {@code a}; returns exactly its elements. */
    private MemorySegment download(Arena a, NativeTensor t, java.lang.foreign.ValueLayout element, int hostDtype) {
        long[] sizes = t.sizes();
        long n = numel(sizes);
        MemorySegment host = a.allocate(element, Math.max(n, 1));
        try (NativeTensor view = hostView(host, sizes, hostDtype)) {
            copyInto(view, t);
        }
        return host.asSlice(0, n * element.byteSize());
    }

    /** {@code t} itself (a new reference) when contiguous, else a contiguous copy. */
    NativeTensor contiguous(NativeTensor t) {
        if (t.isContiguous()) {
            return t.share();
        }
        NativeTensor out = empty(t.sizes(), t.dtypeCode());
        copyInto(out, t);
        return out;
    }

    /** Like {@link #contiguous} but closes {@code t}. */
    NativeTensor contiguousConsuming(NativeTensor t) {
        if (t.isContiguous()) {
            return t; // the same handle, passed on (no new reference, no delete)
        }
        try (t) {
            return contiguous(t);
        }
    }

    /** A 0-dim host tensor (ATen lets it take part in ops on any device). */
    NativeTensor scalar(double value) {
        return returning("aoti_torch_scalar_to_tensor_float64",
                (a, ret) -> (int) shim.scalarToTensorF64.invokeExact(value, ret));
    }

    /** A 0-dim float64 tensor on this device (an operand of in-place and clamp kernels). */
    NativeTensor deviceScalar(double value) {
        NativeTensor host = scalar(value);
        if (dev.equals("cpu")) {
            return host;
        }
        try (host) {
            NativeTensor out = empty(new long[0], shim.dtypeF64);
            if (!uploadAsync(out, host)) {
                copyInto(out, host);
            }
            return out;
        }
    }

    /** A 0-dim int64 tensor on this device. */
    NativeTensor scalarLong(long value) {
        try (NativeTensor host = returning("aoti_torch_scalar_to_tensor_int64",
                (a, ret) -> (int) shim.scalarToTensorI64.invokeExact(value, ret))) {
            NativeTensor out = empty(new long[0], shim.dtypeI64);
            if (!uploadAsync(out, host)) {
                copyInto(out, host);
            }
            return out;
        }
    }

    // ---- generated per-device entry points -----------------------------------------------------------

    private static final FunctionDescriptor CONV = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor CONV_BACKWARD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT,
            ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor OUT3 = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor ADDMM = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_DOUBLE, JAVA_DOUBLE);
    private static final FunctionDescriptor CAT = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
    private static final FunctionDescriptor ADD_TENSOR = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_DOUBLE, ADDRESS);
    private static final FunctionDescriptor ADD_SCALAR = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_DOUBLE, JAVA_DOUBLE, ADDRESS);
    private static final FunctionDescriptor MUL_SCALAR = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_DOUBLE, ADDRESS);
    private static final FunctionDescriptor FILL = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_DOUBLE);
    private static final FunctionDescriptor PAD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG,
            ADDRESS, ADDRESS, ADDRESS);

    /** 2-D convolution, dilation 1, groups 1: x (N, C, H, W), w (O, C, kH, kW), bias (O) or null → (N, O, Ho, Wo). */
    NativeTensor convolution(NativeTensor x, NativeTensor w, NativeTensor bias, int stride, int padding) {
        MethodHandle h = shim.deviceOp(dev, "convolution", CONV);
        return returning("convolution", (a, ret) -> {
            MemorySegment biasPtr = bias == null ? MemorySegment.NULL : a.allocateFrom(ADDRESS, bias.handle());
            return (int) h.invokeExact(x.handle(), w.handle(), biasPtr, longs(a, stride, stride), 2L,
                    longs(a, padding, padding), 2L, longs(a, 1, 1), 2L, 0, longs(a, 0, 0), 2L, 1L, ret);
        }, x, w);
    }

    /**
     * {@code convolution_backward}: (dx, dWeight, dBias), each null unless its mask entry is set;
     * {@code biasChannels} is the bias length (O) or -1 without bias.
     */
    NativeTensor[] convolutionBackward(NativeTensor dOut, NativeTensor x, NativeTensor w, int biasChannels,
                                       int stride, int padding, boolean[] mask) {
        MethodHandle h = shim.deviceOp(dev, "convolution_backward", CONV_BACKWARD);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment biasSizes = MemorySegment.NULL;
            if (biasChannels >= 0) {
                biasSizes = a.allocateFrom(ADDRESS, longs(a, biasChannels));
            }
            MemorySegment maskSeg = a.allocate(JAVA_INT, 3);
            for (int i = 0; i < 3; i++) {
                maskSeg.setAtIndex(JAVA_INT, i, mask[i] ? 1 : 0);
            }
            MemorySegment r = a.allocate(ADDRESS, 3);
            int rc = (int) h.invokeExact(dOut.handle(), x.handle(), w.handle(), biasSizes, 1L,
                    longs(a, stride, stride), 2L, longs(a, padding, padding), 2L, longs(a, 1, 1), 2L, 0,
                    longs(a, 0, 0), 2L, 1L, maskSeg, 3L, r, r.asSlice(8), r.asSlice(16));
            check(rc, "convolution_backward", dOut, x, w);
            return adoptResults(r, 3, mask);
        } catch (Throwable t) {
            throw Shim.rethrow("convolution_backward", t);
        }
    }

    /** {@code out = a @ b} (2-D). */
    void mmOut(NativeTensor out, NativeTensor a, NativeTensor b) {
        out3("mm_out", out, a, b);
    }

    /** {@code out = a @ b} per batch (3-D). */
    void bmmOut(NativeTensor out, NativeTensor a, NativeTensor b) {
        out3("bmm_out", out, a, b);
    }

    private void out3(String op, NativeTensor out, NativeTensor a, NativeTensor b) {
        MethodHandle h = shim.deviceOp(dev, op, OUT3);
        try {
            int rc = (int) h.invokeExact(out.handle(), a.handle(), b.handle());
            check(rc, op, a, b);
        } catch (Throwable t) {
            throw Shim.rethrow(op, t);
        }
    }

    /** {@code out = beta * self + alpha * (m1 @ m2)}, self broadcast (a bias row). */
    void addmmOut(NativeTensor out, NativeTensor self, NativeTensor m1, NativeTensor m2, double beta, double alpha) {
        MethodHandle h = shim.deviceOp(dev, "addmm_out", ADDMM);
        try {
            int rc = (int) h.invokeExact(out.handle(), self.handle(), m1.handle(), m2.handle(), beta, alpha);
            check(rc, "addmm_out", self, m1, m2);
        } catch (Throwable t) {
            throw Shim.rethrow("addmm_out", t);
        }
    }

    /** Concatenation along {@code dim}. */
    NativeTensor cat(NativeTensor[] xs, int dim) {
        MethodHandle h = shim.deviceOp(dev, "cat", CAT);
        return returning("cat", (a, ret) -> {
            MemorySegment arr = a.allocate(ADDRESS, xs.length);
            for (int i = 0; i < xs.length; i++) {
                arr.setAtIndex(ADDRESS, i, xs[i].handle());
            }
            return (int) h.invokeExact(arr, (long) xs.length, (long) dim, ret);
        }, xs);
    }

    /** {@code a + alpha * b} (broadcasting). */
    NativeTensor add(NativeTensor x, NativeTensor y, double alpha) {
        MethodHandle h = shim.deviceOp(dev, "add_Tensor", ADD_TENSOR);
        return returning("add.Tensor", (a, ret) -> (int) h.invokeExact(x.handle(), y.handle(), alpha, ret), x, y);
    }

    /** {@code x + alpha * other} for a number {@code other}. */
    NativeTensor addScalar(NativeTensor x, double other, double alpha) {
        MethodHandle h = shim.deviceOp(dev, "add_Scalar", ADD_SCALAR);
        return returning("add.Scalar", (a, ret) -> (int) h.invokeExact(x.handle(), other, alpha, ret), x);
    }

    /** {@code x * other} for a number {@code other}. */
    NativeTensor mulScalar(NativeTensor x, double other) {
        MethodHandle h = shim.deviceOp(dev, "mul_Scalar", MUL_SCALAR);
        return returning("mul.Scalar", (a, ret) -> (int) h.invokeExact(x.handle(), other, ret), x);
    }

    /** {@code t.fill_(value)}. */
    void fill(NativeTensor t, double value) {
        MethodHandle h = shim.deviceOp(dev, "fill__Scalar", FILL);
        try {
            int rc = (int) h.invokeExact(t.handle(), value);
            check(rc, "fill_.Scalar", t);
        } catch (Throwable e) {
            throw Shim.rethrow("fill_.Scalar", e);
        }
    }

    /** Constant padding, {@code pad} as in ATen (last dimension first: left, right, top, bottom). */
    NativeTensor pad(NativeTensor x, long[] pad, double value) {
        MethodHandle h = shim.deviceOp(dev, "pad", PAD);
        return returning("pad", (a, ret) -> (int) h.invokeExact(x.handle(), longs(a, pad), (long) pad.length,
                a.allocateFrom("constant"), a.allocateFrom(JAVA_DOUBLE, value), ret), x);
    }

    // ---- dispatcher operators -------------------------------------------------------------------------

    /** A one-tensor operator such as {@code aten::exp}. */
    NativeTensor unary(String op, NativeTensor x) {
        try (Dispatch d = dispatch(op, "")) {
            return d.tensor(x).call1();
        }
    }

    /** A two-tensor operator such as {@code aten::div.Tensor}. */
    NativeTensor binary(String op, String overload, NativeTensor x, NativeTensor y) {
        try (Dispatch d = dispatch(op, overload)) {
            return d.tensor(x).tensor(y).call1();
        }
    }

    /** A view with new sizes ({@code aten::view}); the input must be contiguous. */
    NativeTensor view(NativeTensor x, long[] sizes) {
        NativeTensor fast = contiguousView(x, sizes);
        if (fast != null) {
            return fast;
        }
        try (Dispatch d = dispatch("aten::view", "")) {
            return d.tensor(x).ints(sizes).call1();
        }
    }

    /**
     * A view of contiguous {@code x} with {@code sizes} (same element count) made by {@code _reinterpret_tensor}: plain
     * calls instead of the boxed dispatcher (views are a third of the ops a step issues; the dispatcher's view cost
     * 3.1 µs to issue on the H200 machine, PyTorch's 0.9). Null when that function is missing or x is not contiguous.
     */
    private NativeTensor contiguousView(NativeTensor x, long[] sizes) {
        if (shim.reinterpretTensor == null || !x.isContiguous()) {
            return null;
        }
        long want = 1;
        for (long d : sizes) {
            if (d < 0) {
                return null; // an inferred dimension: the dispatcher's view resolves it
            }
            want *= d;
        }
        long[] have = x.sizes();
        if (numel(have) != want) {
            throw new TorchException("view: " + java.util.Arrays.toString(sizes) + " does not have the elements of "
                    + java.util.Arrays.toString(have));
        }
        return reinterpret(x, sizes, contiguousStrides(sizes));
    }

    /** The view of x's storage with {@code sizes} and {@code strides} from x's own offset (unchecked: callers check). */
    private NativeTensor reinterpret(NativeTensor x, long[] sizes, long[] strides) {
        return reinterpret(x, sizes, strides, 0);
    }

    /** As above, {@code offset} elements further into x's storage. */
    private NativeTensor reinterpret(NativeTensor x, long[] sizes, long[] strides, long offset) {
        // the offset argument is an increment on x's own storage offset (inductor's _reinterpret_tensor)
        return returning("_reinterpret_tensor", (a, ret) -> (int) shim.reinterpretTensor.invokeExact(x.handle(),
                (long) sizes.length, longs(a, sizes), longs(a, strides), offset, ret), x);
    }

    /**
     * Contiguous {@code x} of {@code n} elements repeated: each element {@code times} times in a row
     * ({@code repeatEach}) or the whole vector {@code times} times ({@code !repeatEach}); a new contiguous
     * 1-D tensor of n·times elements. One stride-0 view and one copy (no boxed dispatcher where the shim has
     * {@code _reinterpret_tensor}).
     */
    NativeTensor repeated(NativeTensor x, long n, long times, boolean repeatEach) {
        long[] sizes = repeatEach ? new long[] {n, times} : new long[] {times, n};
        long[] strides = repeatEach ? new long[] {1, 0} : new long[] {0, 1};
        NativeTensor out = empty(new long[] {n * times}, x.dtypeCode());
        try {
            NativeTensor wide;
            if (shim.reinterpretTensor != null && x.isContiguous()) {
                wide = reinterpret(x, sizes, strides);
            } else {
                try (NativeTensor v = view(x, repeatEach ? new long[] {n, 1} : new long[] {1, n});
                     Dispatch d = dispatch("aten::expand", "")) {
                    wide = d.tensor(v).ints(sizes).b(false).call1();
                }
            }
            try (wide; NativeTensor target = view(out, sizes)) {
                copyInto(target, wide);
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /**
     * {@code aten::reshape}: a view when the strides allow, else a copy. A contiguous tensor's is the contiguous view,
     * made without the boxed dispatcher (as {@link #view}): the optimizer's packed transfers and the deferred
     * gradient sums flatten thousands of tensors each time.
     */
    NativeTensor reshape(NativeTensor x, long[] sizes) {
        NativeTensor fast = contiguousView(x, sizes);
        if (fast != null) {
            return fast;
        }
        try (Dispatch d = dispatch("aten::reshape", "")) {
            return d.tensor(x).ints(sizes).call1();
        }
    }

    /** A view with two dimensions swapped ({@code aten::transpose.int}). */
    NativeTensor transpose(NativeTensor x, int dim0, int dim1) {
        if (shim.reinterpretTensor != null) {
            // the same view as aten::transpose (sizes and strides swapped), without the boxed dispatcher
            long[] sizes = x.sizes();
            long[] strides = x.strides();
            int a0 = axis(dim0, sizes.length);
            int a1 = axis(dim1, sizes.length);
            if (a0 < 0 || a1 < 0 || a0 >= sizes.length || a1 >= sizes.length) {
                throw new TorchException("transpose: dims " + dim0 + ", " + dim1 + " of a " + sizes.length + "-d tensor");
            }
            swap(sizes, a0, a1);
            swap(strides, a0, a1);
            return reinterpret(x, sizes, strides);
        }
        try (Dispatch d = dispatch("aten::transpose", "int")) {
            return d.tensor(x).i(dim0).i(dim1).call1();
        }
    }

    /** A view with permuted dimensions ({@code aten::permute}). */
    NativeTensor permute(NativeTensor x, long[] dims) {
        try (Dispatch d = dispatch("aten::permute", "")) {
            return d.tensor(x).ints(dims).call1();
        }
    }

    /** A view of {@code [start, start+length)} along {@code dim} ({@code aten::narrow}). */
    NativeTensor narrow(NativeTensor x, int dim, long start, long length) {
        if (shim.reinterpretTensor != null) {
            long[] sizes = x.sizes();
            int d = axis(dim, sizes.length);
            if (d < 0 || d >= sizes.length || start < 0 || length < 0 || start + length > sizes[d]) {
                throw new TorchException("narrow: " + start + "+" + length + " along dim " + dim + " of "
                        + java.util.Arrays.toString(sizes));
            }
            long[] strides = x.strides();
            sizes[d] = length;
            return reinterpret(x, sizes, strides, start * strides[d]);
        }
        try (Dispatch d = dispatch("aten::narrow", "")) {
            return d.tensor(x).i(dim).i(start).i(length).call1();
        }
    }

    /** A broadcast view ({@code aten::expand}). */
    NativeTensor expand(NativeTensor x, long[] sizes) {
        try (Dispatch d = dispatch("aten::expand", "")) {
            return d.tensor(x).ints(sizes).b(false).call1();
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    private NativeTensor[] adoptResults(MemorySegment r, int n, boolean[] wanted) {
        NativeTensor[] out = new NativeTensor[n];
        for (int i = 0; i < n; i++) {
            MemorySegment h = r.getAtIndex(ADDRESS, i);
            if (h.equals(MemorySegment.NULL)) {
                continue;
            }
            NativeTensor t = NativeTensor.adopt(shim, h);
            if (wanted != null && !wanted[i]) {
                t.close();
            } else {
                out[i] = t;
            }
        }
        return out;
    }

    NativeTensor[] adoptResults(MemorySegment r, int n) {
        return adoptResults(r, n, null);
    }

    /** Elements of a tensor of {@code sizes}. */
    static long numel(long[] sizes) {
        long n = 1;
        for (long size : sizes) {
            n *= size;
        }
        return n;
    }

    /** A dimension counted from the end when negative, as ATen counts it (not range-checked). */
    private static int axis(int dim, int rank) {
        return dim < 0 ? dim + rank : dim;
    }

    private static void swap(long[] v, int i, int j) {
        long t = v[i];
        v[i] = v[j];
        v[j] = t;
    }

    static MemorySegment longs(Arena a, long... values) {
        return a.allocateFrom(JAVA_LONG, values.length == 0 ? new long[] {0} : values);
    }

    static MemorySegment longs(Arena a, int... values) {
        long[] v = new long[values.length];
        for (int i = 0; i < v.length; i++) {
            v[i] = values[i];
        }
        return longs(a, v);
    }

    /** Checks a generated function's result, naming the op and the shapes of its tensor arguments. */
    static void check(int rc, String op, NativeTensor... args) {
        if (rc != 0) {
            StringBuilder b = new StringBuilder();
            for (NativeTensor t : args) {
                if (b.length() > 0) {
                    b.append(", ");
                }
                b.append(t == null ? "null" : t.isClosed() ? "closed" : java.util.Arrays.toString(t.sizes()));
            }
            throw new TorchException(op + "(" + b + ") failed (libtorch error code " + rc
                    + "; the reason is on stderr)");
        }
    }
}
