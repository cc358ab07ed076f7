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
    private final NativeTensor data;
    private final NativeTensor[] extras;
    private final MemoryMeter.Storage storage;
    /** For the log-sum-exp of an attention forward on CUDA: the kernel that made it (its backward must match). */
    private AtenAttention.Kernel attentionKernel;

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

    /** The storage account, shared with views. */
    MemoryMeter.Storage storage() {
        return storage;
    }

    @Override
    protected void release() {
        backend.released(this);
        NativeTensor[] all = new NativeTensor[extras.length + 1];
        all[0] = data;
        System.arraycopy(extras, 0, all, 1, extras.length);
        NativeTensor.closeAll(all);
    }
}
