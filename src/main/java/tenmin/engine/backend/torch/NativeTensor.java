package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Owns one {@code AtenTensorHandle} (one reference to an {@code at::Tensor}): {@link #close()} deletes it
 * once (idempotent); using it afterwards throws. Views made by ATen hold their own reference to the
 * storage, so closing a base never invalidates a view.
 */
final class NativeTensor implements AutoCloseable {
    private final Shim shim;
    private MemorySegment handle;

    private NativeTensor(Shim shim, MemorySegment handle) {
        this.shim = shim;
        this.handle = handle;
    }

    /** Takes ownership of {@code handle} (a handle libtorch returned to us). */
    static NativeTensor adopt(Shim shim, MemorySegment handle) {
        if (handle.equals(MemorySegment.NULL)) {
            throw new TorchException("libtorch returned a null tensor handle");
        }
        return new NativeTensor(shim, handle);
    }

    /** The raw handle; throws after close. */
    MemorySegment handle() {
        if (handle == null) {
            throw new IllegalStateException("native tensor used after it was closed");
        }
        return handle;
    }

    boolean isClosed() {
        return handle == null;
    }

    /** A getter of the shim: writes one value of {@code layout} to {@code ret}. */
    @FunctionalInterface
    private interface Query {
        int invoke(MemorySegment handle, MemorySegment ret) throws Throwable;
    }

    /** Runs a getter with a fresh slot of {@code layout} in {@code a} and returns the slot. */
    private MemorySegment query(Arena a, String what, MemoryLayout layout, Query q) {
        MemorySegment ret = a.allocate(layout);
        try {
            Shim.check(q.invoke(handle(), ret), what);
        } catch (Throwable t) {
            throw Shim.rethrow(what, t);
        }
        return ret;
    }

    /** A new handle to the same tensor, for a call that consumes its argument (the dispatcher). */
    MemorySegment newHandle() {
        try (Arena a = Arena.ofConfined()) {
            return query(a, "aoti_torch_new_tensor_handle", ADDRESS,
                    (h, r) -> (int) shim.newTensorHandle.invokeExact(h, r)).get(ADDRESS, 0);
        }
    }

    /** A second owner of the same tensor. */
    NativeTensor share() {
        return adopt(shim, newHandle());
    }

    int dim() {
        try (Arena a = Arena.ofConfined()) {
            return (int) query(a, "aoti_torch_get_dim", JAVA_LONG, (h, r) -> (int) shim.getDim.invokeExact(h, r))
                    .get(JAVA_LONG, 0);
        }
    }

    long[] sizes() {
        return longArray("aoti_torch_get_sizes", (h, r) -> (int) shim.getSizes.invokeExact(h, r));
    }

    long[] strides() {
        return longArray("aoti_torch_get_strides", (h, r) -> (int) shim.getStrides.invokeExact(h, r));
    }

    /** A borrowed {@code int64_t*} of {@link #dim()} values, copied. */
    private long[] longArray(String what, Query q) {
        int n = dim();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = query(a, what, ADDRESS, q).get(ADDRESS, 0).reinterpret(8L * n);
            return n == 0 ? new long[0] : arr.toArray(JAVA_LONG);
        }
    }

    int dtypeCode() {
        try (Arena a = Arena.ofConfined()) {
            return query(a, "aoti_torch_get_dtype", JAVA_INT, (h, r) -> (int) shim.getDtype.invokeExact(h, r))
                    .get(JAVA_INT, 0);
        }
    }

    boolean isContiguous() {
        try (Arena a = Arena.ofConfined()) {
            return query(a, "aoti_torch_is_contiguous", JAVA_BOOLEAN,
                    (h, r) -> (int) shim.isContiguous.invokeExact(h, r)).get(JAVA_BOOLEAN, 0);
        }
    }

    /** Address of the first element (device memory for CUDA tensors). */
    MemorySegment dataPtr() {
        try (Arena a = Arena.ofConfined()) {
            return query(a, "aoti_torch_get_data_ptr", ADDRESS, (h, r) -> (int) shim.getDataPtr.invokeExact(h, r))
                    .get(ADDRESS, 0);
        }
    }

    /** Deletes the handle; idempotent. */
    @Override
    public void close() {
        MemorySegment h = handle;
        if (h == null) {
            return;
        }
        handle = null;
        try {
            int rc = (int) shim.deleteTensorObject.invokeExact(h);
            Shim.check(rc, "aoti_torch_delete_tensor_object");
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_delete_tensor_object", t);
        }
    }

    /** Closes every non-null tensor, even when one close fails (the first failure is rethrown). */
    static void closeAll(NativeTensor... tensors) {
        RuntimeException failure = null;
        for (NativeTensor t : tensors) {
            if (t == null) {
                continue;
            }
            try {
                t.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public String toString() {
        return handle == null ? "NativeTensor[closed]" : "NativeTensor" + Arrays.toString(sizes());
    }
}
