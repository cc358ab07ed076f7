package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
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

    /** A new handle to the same tensor, for a call that consumes its argument (the dispatcher). */
    MemorySegment newHandle() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(ADDRESS);
            int rc = (int) shim.newTensorHandle.invokeExact(handle(), ret);
            Shim.check(rc, "aoti_torch_new_tensor_handle");
            return ret.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_new_tensor_handle", t);
        }
    }

    /** A second owner of the same tensor. */
    NativeTensor share() {
        return adopt(shim, newHandle());
    }

    int dim() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(JAVA_LONG);
            int rc = (int) shim.getDim.invokeExact(handle(), ret);
            Shim.check(rc, "aoti_torch_get_dim");
            return (int) ret.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_get_dim", t);
        }
    }

    long[] sizes() {
        return longArray(true);
    }

    long[] strides() {
        return longArray(false);
    }

    private long[] longArray(boolean sizes) {
        int n = dim();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(ADDRESS);
            int rc = sizes ? (int) shim.getSizes.invokeExact(handle(), ret) : (int) shim.getStrides.invokeExact(handle(), ret);
            Shim.check(rc, sizes ? "aoti_torch_get_sizes" : "aoti_torch_get_strides");
            MemorySegment arr = ret.get(ADDRESS, 0).reinterpret(8L * n);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = arr.getAtIndex(JAVA_LONG, i);
            }
            return out;
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_get_sizes", t);
        }
    }

    int dtypeCode() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(JAVA_INT);
            int rc = (int) shim.getDtype.invokeExact(handle(), ret);
            Shim.check(rc, "aoti_torch_get_dtype");
            return ret.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_get_dtype", t);
        }
    }

    boolean isContiguous() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(JAVA_BOOLEAN);
            int rc = (int) shim.isContiguous.invokeExact(handle(), ret);
            Shim.check(rc, "aoti_torch_is_contiguous");
            return ret.get(JAVA_BOOLEAN, 0);
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_is_contiguous", t);
        }
    }

    /** Address of the first element (device memory for CUDA tensors). */
    MemorySegment dataPtr() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ret = a.allocate(ADDRESS);
            int rc = (int) shim.getDataPtr.invokeExact(handle(), ret);
            Shim.check(rc, "aoti_torch_get_data_ptr");
            return ret.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_get_data_ptr", t);
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
