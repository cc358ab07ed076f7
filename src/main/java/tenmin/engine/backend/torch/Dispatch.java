package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One call of an ATen operator by name through {@code aoti_torch_call_dispatcher}: arguments are pushed in
 * schema order onto a {@code StableIValue} stack, then {@link #call} runs the operator and returns its
 * tensor results, which the caller owns.
 *
 * <p>Encoding (torch/csrc/shim_common.cpp, {@code to_ivalue}): a tensor is a handle the call consumes (we
 * pass a new reference, never the caller's); int and SymInt are int64; float is the double's raw bits;
 * bool is 0/1; ScalarType is the {@code aoti_torch_dtype_*} code; a list is a {@code StableListHandle}
 * the call consumes; an optional is 0 for None, else a pointer to a heap {@code StableIValue} the call
 * frees. The stack holds {@code max(#arguments, #returns)} values; results replace it from index 0.
 * {@code Scalar} arguments have no stable encoding: operators with them go through the generated
 * per-device functions instead ({@link Aten}).
 *
 * <pre>{@code
 * try (Dispatch d = new Dispatch(shim, "aten::silu_backward", "")) {
 *     NativeTensor dx = d.tensor(dOut).tensor(x).call1();
 * }
 * }</pre>
 * If the call fails, values already pushed may leak (libtorch converts arguments one by one); failures
 * here are programming errors, not data errors.
 */
final class Dispatch implements AutoCloseable {
    private static final int MAX_STACK = 32;

    private final Shim shim;
    private final String op;
    private final String overload;
    private final Arena arena = Arena.ofConfined();
    private final List<Long> stack = new ArrayList<>();
    /** What each argument was, for the error message: a String, or the NativeTensor (described only on failure). */
    private final List<Object> described = new ArrayList<>();

    Dispatch(Shim shim, String op, String overload) {
        this.shim = shim;
        this.op = op;
        this.overload = overload;
    }

    private Dispatch push(long value, Object what) {
        stack.add(value);
        described.add(what);
        return this;
    }

    /** A {@code Tensor} argument (a new reference is consumed, {@code t} stays valid). */
    Dispatch tensor(NativeTensor t) {
        return push(t.newHandle().address(), t);
    }

    private String signature() {
        StringBuilder b = new StringBuilder();
        for (Object o : described) {
            if (b.length() > 0) {
                b.append(", ");
            }
            if (o instanceof NativeTensor t) {
                b.append(t.isClosed() ? "closed tensor" : "tensor" + java.util.Arrays.toString(t.sizes()));
            } else if (o instanceof long[] ints) {
                b.append(java.util.Arrays.toString(ints));
            } else {
                b.append(o);
            }
        }
        return b.toString();
    }

    /** An undefined {@code Tensor} ({@code at::Tensor()}), e.g. the unused cum_seq arguments of attention. */
    Dispatch undefinedTensor() {
        try {
            MemorySegment ret = arena.allocate(ADDRESS);
            int rc = (int) shim.newUninitializedTensor.invokeExact(ret);
            Shim.check(rc, "aoti_torch_new_uninitialized_tensor");
            return push(ret.get(ADDRESS, 0).address(), "undefined");
        } catch (Throwable t) {
            throw Shim.rethrow("aoti_torch_new_uninitialized_tensor", t);
        }
    }

    /** A {@code Tensor?} argument: None for null. */
    Dispatch optTensor(NativeTensor t) {
        return t == null ? none() : push(box(t.newHandle().address()), t);
    }

    Dispatch i(long v) {
        return push(v, v);
    }

    Dispatch f(double v) {
        return push(Double.doubleToRawLongBits(v), v);
    }

    Dispatch b(boolean v) {
        return push(v ? 1 : 0, v);
    }

    /** A {@code ScalarType} argument (an {@code aoti_torch_dtype_*} code). */
    Dispatch dtype(int code) {
        return push(code, "dtype " + code);
    }

    /** A {@code float?} argument. */
    Dispatch optF(Double v) {
        return v == null ? none() : push(box(Double.doubleToRawLongBits(v)), "some(" + v + ")");
    }

    /** An {@code int[]} / {@code SymInt[]} argument. */
    Dispatch ints(long... values) {
        return push(list(values), values);
    }

    /** An {@code int[]?} argument: None for null. */
    Dispatch optInts(long[] values) {
        return values == null ? none() : push(box(list(values)), values);
    }

    /** A {@code bool[]} argument (output masks). */
    Dispatch bools(boolean... values) {
        long[] v = new long[values.length];
        for (int i = 0; i < v.length; i++) {
            v[i] = values[i] ? 1 : 0;
        }
        return push(list(v), "bools" + java.util.Arrays.toString(values));
    }

    /** A {@code str} argument (a {@code StringHandle} holding a copy of the UTF-8 bytes). */
    Dispatch str(String value) {
        if (shim.newStringHandle == null) {
            throw new TorchException("this libtorch cannot pass string arguments (no torch_new_string_handle): " + op);
        }
        try {
            byte[] bytes = value.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            MemorySegment data = arena.allocate(Math.max(bytes.length, 1));
            MemorySegment.copy(bytes, 0, data, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, bytes.length);
            MemorySegment ret = arena.allocate(ADDRESS);
            int rc = (int) shim.newStringHandle.invokeExact(data, (long) bytes.length, ret);
            Shim.check(rc, "torch_new_string_handle");
            return push(ret.get(ADDRESS, 0).address(), "'" + value + "'");
        } catch (Throwable t) {
            throw Shim.rethrow("torch_new_string_handle", t);
        }
    }

    /** None for any optional argument. */
    Dispatch none() {
        return push(0, "None");
    }

    private long list(long[] values) {
        try {
            MemorySegment ret = arena.allocate(ADDRESS);
            int rc = (int) shim.newList.invokeExact((long) values.length, ret);
            Shim.check(rc, "torch_new_list_reserve_size");
            MemorySegment list = ret.get(ADDRESS, 0);
            for (long v : values) {
                rc = (int) shim.listPushBack.invokeExact(list, v);
                Shim.check(rc, "torch_list_push_back");
            }
            return list.address();
        } catch (Throwable t) {
            throw Shim.rethrow("building a StableIValue list", t);
        }
    }

    /** A heap {@code StableIValue} holding {@code value}, freed by the call. */
    private long box(long value) {
        try {
            MemorySegment p;
            if (shim.newStableIValue != null) {
                MemorySegment ret = arena.allocate(ADDRESS);
                int rc = (int) shim.newStableIValue.invokeExact(ret);
                Shim.check(rc, "torch_new_stable_ivalue");
                p = ret.get(ADDRESS, 0);
            } else {
                p = (MemorySegment) shim.cppNew.invokeExact(8L);
            }
            p.reinterpret(8).set(JAVA_LONG, 0, value);
            return p.address();
        } catch (Throwable t) {
            throw Shim.rethrow("allocating an optional StableIValue", t);
        }
    }

    /** Runs the operator; returns its first {@code returns} results as tensors the caller owns. */
    NativeTensor[] call(int returns) {
        long[] raw = callRaw(returns);
        NativeTensor[] out = new NativeTensor[returns];
        for (int i = 0; i < returns; i++) {
            out[i] = NativeTensor.adopt(shim, MemorySegment.ofAddress(raw[i]));
        }
        return out;
    }

    /** Runs an operator with one tensor result. */
    NativeTensor call1() {
        return call(1)[0];
    }

    /** Runs the operator and returns the raw result {@code StableIValue}s (tensor handles are owned by the caller). */
    long[] callRaw(int returns) {
        int n = Math.max(stack.size(), returns);
        if (n > MAX_STACK) {
            throw new IllegalArgumentException("dispatcher stack of " + n + " values for " + op);
        }
        MemorySegment s = arena.allocate(JAVA_LONG, Math.max(n, 1));
        for (int i = 0; i < stack.size(); i++) {
            s.setAtIndex(JAVA_LONG, i, stack.get(i));
        }
        MemorySegment name = arena.allocateFrom(op);
        MemorySegment over = arena.allocateFrom(overload);
        int rc;
        try {
            if (shim.callDispatcher != null) {
                rc = (int) shim.callDispatcher.invokeExact(name, over, s);
            } else {
                rc = (int) shim.torchCallDispatcher.invokeExact(name, over, s, shim.abiVersion);
            }
        } catch (Throwable t) {
            throw Shim.rethrow(op, t);
        }
        if (rc != 0) {
            throw new TorchException(op + (overload.isEmpty() ? "" : "." + overload) + "(" + signature()
                    + ") failed (libtorch error code " + rc + "; the reason is on stderr)");
        }
        long[] out = new long[returns];
        for (int i = 0; i < returns; i++) {
            out[i] = s.getAtIndex(JAVA_LONG, i);
        }
        return out;
    }

    @Override
    public void close() {
        arena.close();
    }
}
