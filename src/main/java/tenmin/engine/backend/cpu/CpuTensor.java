package tenmin.engine.backend.cpu;

import tenmin.engine.api.DType;
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * A tensor of the {@code cpu} backend: a {@code float[]} for the floating dtypes (bf16/fp16 tensors
 * hold fp32 values already rounded to their precision) or a {@code long[]} for I64, row-major, the
 * whole array. A view ({@code reshape}) shares the array and the storage account of its base: the bytes
 * count once, while either is open.
 */
final class CpuTensor extends Tensor {
    private final CpuBackend backend;
    private final MemoryMeter.Storage storage;
    private float[] data;
    private long[] longs;

    /** A tensor on new storage ({@code base} null) or a view sharing {@code base}'s arrays and storage account. */
    CpuTensor(CpuBackend backend, Scope owner, Shape shape, DType dtype, float[] data, long[] longs, CpuTensor base) {
        super(owner, shape, dtype);
        this.backend = backend;
        this.data = data;
        this.longs = longs;
        this.storage = backend.allocated(this, base);
    }

    /** The float storage; throws when closed or integer. */
    float[] data() {
        checkOpen();
        if (data == null) {
            throw new IllegalArgumentException("tensor " + describe() + " is integer; a floating tensor is required");
        }
        return data;
    }

    /** The long storage; throws when closed or floating. */
    long[] longs() {
        checkOpen();
        if (longs == null) {
            throw new IllegalArgumentException("tensor " + describe() + " is floating; an I64 tensor is required");
        }
        return longs;
    }

    /** The storage account shared with views. */
    MemoryMeter.Storage storage() {
        return storage;
    }

    @Override
    protected void release() {
        backend.released(this);
        data = null;
        longs = null;
    }
}
