package tenmin.engine.backend.torch;

import tenmin.engine.api.DType;
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * A tensor of the torch backend: owns one {@link NativeTensor} (always contiguous, row-major) and,
 * for the log-sum-exp of an attention forward, the kernel's own saved tensors ({@code extras}: its
 * native-layout log-sum-exp and dropout RNG state), which the matching backward needs and which die
 * with this tensor.
 */
final class TorchTensor extends Tensor {
    private final TorchBackend backend;
    private NativeTensor data;
    private final NativeTensor[] extras;
    private MemoryMeter.Storage storage;
    /** For the log-sum-exp of an attention forward on CUDA: the kernel that made it (its backward must match). */
    private AtenAttention.Kernel attentionKernel;
    /** For a 2-d weight used by linear layers: its transposed view, made at the first use and kept (null before). */
    private NativeTensor transposed;
    /** {@link #data}'s address, read at the first use and kept (-1 before), and whether it is contiguous. */
    private long address = -1;
    private boolean contiguous;

    TorchTensor(Scope owner, Shape shape, DType dtype, TorchBackend backend, NativeTensor data,
                MemoryMeter.Storage storage, NativeTensor... extras) {
        super(owner, shape, dtype);
        this.backend = backend;
        this.data = data;
        this.extras = extras;
        this.storage = storage;
    }

    TorchBackend torchBackend() {
        return backend;
    }

    NativeTensor data() {
        checkOpen();
        return data;
    }

    /** The kernel-specific saved tensors (possibly null entries), empty for ordinary tensors. */
    NativeTensor[] extras() {
        checkOpen();
        return extras;
    }

    AtenAttention.Kernel attentionKernel() {
        return attentionKernel;
    }

    void attentionKernel(AtenAttention.Kernel kernel) {
        this.attentionKernel = kernel;
    }

    /**
     * The transposed view of this 2-d tensor (a weight's Wᵀ for a linear layer's GEMM), made once and kept until this
     * tensor is released: a frozen weight serves thousands of calls. The caller must not close it.
     */
    NativeTensor transposedView(Aten at) {
        checkOpen();
        if (transposed == null) {
            transposed = at.transpose(data, 0, 1);
        }
        return transposed;
    }

    /**
     * The address of the first element and whether the native tensor is contiguous, asked of libtorch once per
     * native tensor (a gradient in the optimizer's arena is summed into at every micro-batch).
     */
    long address() {
        checkOpen();
        if (address < 0) {
            contiguous = data.isContiguous();
            address = data.dataPtr().address();
        }
        return address;
    }

    /** Whether the native tensor is contiguous (see {@link #address()}). */
    boolean contiguous() {
        address();
        return contiguous;
    }

    /**
     * Makes this tensor the view {@code view} (same shape and dtype) with the storage account {@code account}
     * ({@link TorchBackend#relocate}): the old native tensor and any kept transposed view are closed; the caller has
     * released the old account.
     */
    void rebase(NativeTensor view, MemoryMeter.Storage account) {
        checkOpen();
        NativeTensor.closeAll(data, transposed);
        data = view;
        transposed = null;
        address = -1;
        storage = account;
    }

    /** The storage account, shared with views. */
    MemoryMeter.Storage storage() {
        return storage;
    }

    @Override
    protected void release() {
        backend.released(this);
        NativeTensor[] all = new NativeTensor[extras.length + 2];
        all[0] = data;
        all[1] = transposed;
        System.arraycopy(extras, 0, all, 2, extras.length);
        NativeTensor.closeAll(all);
    }
}
