package tenmin.engine.backend.cpu;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * A tensor of the {@code cpu} backend: a {@code float[]} for the floating dtypes (bf16/fp16 tensors
 * hold fp32 values already rounded to their precision) or a {@code long[]} for I64, row-major, the
 * whole array. A view ({@code reshape}) shares the array of its base and does not count towards the
 * backend's live bytes.
 */
final class CpuTensor extends Tensor {
    private final CpuBackend backend;
    private final boolean view;
    private float[] data;
    private long[] longs;

    CpuTensor(CpuBackend backend, Scope owner, Shape shape, DType dtype, float[] data, long[] longs, boolean view) {
        super(owner, shape, dtype);
        this.backend = backend;
        this.view = view;
        this.data = data;
        this.longs = longs;
        backend.allocated(this);
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

    boolean isView() {
        return view;
    }

    /** Bytes this tensor owns (0 for a view). */
    long ownedBytes() {
        return view ? 0 : sizeBytes();
    }

    @Override
    protected void release() {
        backend.released(this);
        data = null;
        longs = null;
    }
}
