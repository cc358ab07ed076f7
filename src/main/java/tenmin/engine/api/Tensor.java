package tenmin.engine.api;

import java.util.Objects;

/**
 * A dense, row-major array of numbers on one device, with a dtype, a shape and an optional debug name.
 *
 * <p>Its storage belongs to a {@link Backend} (the subclass holds it) and its lifetime to the
 * {@link Scope} that made it: the tensor dies when that scope closes, when it is {@link #close()}d
 * itself, or it moves to another scope with {@link Scope#keep}. Using a closed tensor throws an
 * {@link IllegalStateException} naming the tensor, its shape and who closed it. Memory is never
 * released by the garbage collector.
 *
 * <p>Autograd slots: a tensor that {@link #requireGrad()}s (LoRA parameters, optionally inputs) has a
 * {@link #grad()} tensor of the same shape and dtype in the same scope, allocated at once and filled
 * with zeros; backward passes add into it ({@code +=}, for gradient accumulation).
 *
 * <p>Not thread-safe: a tensor and its scope are used by one thread at a time (backends may use
 * worker threads inside an op).
 */
public abstract class Tensor implements AutoCloseable {
    private final Shape shape;
    private final DType dtype;
    private Scope owner;
    private String name = "";
    private boolean closed;
    private String closedBy;
    private Throwable closedAt;
    private boolean requiresGrad;
    private Tensor grad;

    /** Registers the new tensor with {@code owner}; called by backends only. */
    protected Tensor(Scope owner, Shape shape, DType dtype) {
        this.owner = Objects.requireNonNull(owner, "owner");
        this.shape = Objects.requireNonNull(shape, "shape");
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        owner.register(this);
    }

    /** Releases the storage (native handle, device memory, array reference); called once by the engine. */
    protected abstract void release();

    public final Shape shape() {
        return shape;
    }

    public final DType dtype() {
        return dtype;
    }

    /** The device of the owning backend. */
    public final Device device() {
        return owner.backend().device();
    }

    /** The backend that owns the storage (as seen through its scope, so traced when tracing is on). */
    public final Backend backend() {
        return owner.backend();
    }

    /** The scope this tensor currently belongs to. */
    public final Scope scope() {
        return owner;
    }

    /** The debug name, or the empty string. */
    public final String name() {
        return name;
    }

    /** Sets the debug name shown in traces and errors (e.g. a checkpoint key) and returns this tensor. */
    public final Tensor named(String name) {
        this.name = name == null ? "" : name;
        return this;
    }

    /** Size of dimension {@code dim} (negative counts from the end). */
    public final int dim(int dim) {
        return shape.dim(dim);
    }

    /** Number of dimensions. */
    public final int rank() {
        return shape.rank();
    }

    /** Number of elements. */
    public final long numel() {
        return shape.numel();
    }

    /** Bytes of the elements ({@code numel * dtype size}); views report their full size too. */
    public final long sizeBytes() {
        return shape.numel() * dtype.sizeBytes();
    }

    public final boolean isClosed() {
        return closed;
    }

    /**
     * Throws when this tensor was closed, naming it, its shape and what closed it; returns this tensor.
     * Backends call it on every argument.
     */
    public final Tensor checkOpen() {
        if (closed) {
            throw new IllegalStateException("tensor " + describe() + " used after it was closed (" + closedBy + ")",
                    closedAt);
        }
        return this;
    }

    /**
     * Releases this tensor now (and its gradient, if any) instead of at the end of its scope.
     * Idempotent.
     */
    @Override
    public final void close() {
        if (closed) {
            return;
        }
        owner.forget(this);
        closeBy("closed by close()");
    }

    /** Marks closed and releases storage; the scope has already dropped the tensor. */
    final void closeBy(String by) {
        if (closed) {
            return;
        }
        closed = true;
        closedBy = by;
        Trace trace = owner.trace();
        if (trace.recordsClosers()) {
            closedAt = new Throwable("closed here");
        }
        try {
            release();
        } finally {
            trace.released(this);
            if (grad != null) {
                grad.close();
            }
        }
    }

    /** Moves ownership; called by {@link Scope#adopt}. */
    final void moveTo(Scope target) {
        owner = target;
    }

    // ---- autograd slots -------------------------------------------------------------------------

    /** True when backward passes compute a gradient for this tensor. */
    public final boolean requiresGrad() {
        return requiresGrad;
    }

    /**
     * Marks this tensor as a gradient leaf (a parameter or an input whose gradient is wanted) and
     * allocates its zero gradient in the same scope, once. Returns this tensor.
     */
    public final Tensor requireGrad() {
        checkOpen();
        if (!dtype.isFloat()) {
            throw new IllegalArgumentException("tensor " + describe() + " is integer and cannot require grad");
        }
        if (dtype.isStorageOnly()) {
            throw new IllegalArgumentException("tensor " + describe() + " is stored as " + dtype
                    + ", which no op computes in, and cannot require grad");
        }
        if (!requiresGrad) {
            Tensor g = owner.backend().full(owner, shape, dtype, 0.0);
            g.named(name.isEmpty() ? "grad" : name + ".grad");
            grad = g;
            requiresGrad = true;
        }
        return this;
    }

    /** The accumulated gradient (same shape and dtype), or null when this tensor does not require grad. */
    public final Tensor grad() {
        return grad;
    }

    /** Sets the accumulated gradient to zero (start of a gradient-accumulation window). */
    public final void zeroGrad() {
        if (grad != null) {
            owner.backend().fillInto(grad, 0.0);
        }
    }

    // ---- host copies ----------------------------------------------------------------------------

    /** Copies a floating tensor to the host as fp32 ({@link Backend#toHost}); a sync point. */
    public final float[] toHost() {
        return owner.backend().toHost(this);
    }

    /** Copies an I64 tensor to the host ({@link Backend#toHostLongs}); a sync point. */
    public final long[] toHostLongs() {
        return owner.backend().toHostLongs(this);
    }

    /** The value of a one-element floating tensor (a loss), copied to the host; a sync point. */
    public final float item() {
        if (shape.numel() != 1) {
            throw new IllegalArgumentException("item() of " + describe() + ": not a single value");
        }
        return toHost()[0];
    }

    /** {@code 'name' (2, 4, 16, 16) f32 cpu}, the form used in errors and traces. */
    public final String describe() {
        return (name.isEmpty() ? "" : "'" + name + "' ") + shape + " " + dtype.shortName();
    }

    @Override
    public String toString() {
        return "Tensor[" + describe() + (closed ? ", closed" : "") + "]";
    }
}
