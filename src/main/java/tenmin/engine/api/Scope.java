package tenmin.engine.api;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;

/**
 * A lifetime and a factory: tensors made in a scope die when it closes.
 *
 * <p>Scopes nest: process (workspaces) → model (frozen weights, LoRA parameters, optimizer state)
 * → step (activations and their gradients, closed every micro-batch) → op scratch. Closing a scope
 * closes its open children first, then its tensors, newest first; it closes everything even when one
 * release fails (the first failure is rethrown with the others suppressed). Close is idempotent.
 *
 * <p>A result that must outlive the scope is moved out explicitly with {@link #keep} (to the parent)
 * or {@link #adopt} (into a chosen scope). A {@linkplain #seal() sealed} scope refuses new tensors,
 * so an accidental allocation in the model scope during a step throws instead of leaking.
 *
 * <pre>{@code
 * try (Scope step = model.child("step")) {
 *     Tensor h = f.linear(x, w, b);      // (N, T, C) lives in `step`
 *     result = step.keep(f.mean(h));     // () moves to `model`
 * }                                      // everything else released here
 * }</pre>
 *
 * <p>Not thread-safe: a scope tree is used by one thread.
 */
public final class Scope implements AutoCloseable {
    private final Backend backend;
    private final Scope parent;
    private final String name;
    private final Trace trace;
    private final LinkedHashSet<Tensor> tensors = new LinkedHashSet<>();
    private final List<Scope> children = new ArrayList<>();
    private boolean closed;
    private boolean sealed;

    private Scope(Backend backend, Scope parent, String name, Trace trace) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.parent = parent;
        this.name = Objects.requireNonNull(name, "name");
        this.trace = trace;
    }

    /** A root scope (usually "process") on {@code backend}; tracing follows {@link Backend#trace()}. */
    public static Scope root(Backend backend, String name) {
        return new Scope(backend, null, name, backend.trace());
    }

    /** A nested scope; it closes when this one closes, if not before. */
    public Scope child(String name) {
        checkOpen();
        Scope c = new Scope(backend, this, name, trace);
        children.add(c);
        return c;
    }

    public String name() {
        return name;
    }

    /** Slash-separated names from the root, e.g. {@code process/model/step}. */
    public String path() {
        return parent == null ? name : parent.path() + "/" + name;
    }

    public Backend backend() {
        return backend;
    }

    /** The enclosing scope, or null for a root. */
    public Scope parent() {
        return parent;
    }

    public boolean isClosed() {
        return closed;
    }

    /** The tracer of this scope tree (from the backend given to {@link #root}). */
    public Trace trace() {
        return trace;
    }

    // ---- ownership ------------------------------------------------------------------------------

    /** Moves {@code t}, which this scope owns, to the parent scope and returns it. */
    public <T extends Tensor> T keep(T t) {
        if (parent == null) {
            throw new IllegalStateException("keep(" + t.describe() + "): scope '" + name + "' is a root and has no parent");
        }
        if (t.scope() != this) {
            throw new IllegalStateException("keep(" + t.describe() + "): owned by scope '" + t.scope().path()
                    + "', not '" + path() + "'");
        }
        return parent.adopt(t);
    }

    /**
     * Moves {@code t} (and its gradient) from whichever open scope owns it into this one and returns
     * it. Both scopes must belong to the same backend.
     */
    public <T extends Tensor> T adopt(T t) {
        checkOpen();
        t.checkOpen();
        if (t.scope() == this) {
            return t;
        }
        if (sealed) {
            throw sealedError(t);
        }
        Scope from = t.scope();
        from.tensors.remove(t);
        tensors.add(t);
        t.moveTo(this);
        Tensor g = t.grad();
        if (g != null && g.scope() == from) {
            adopt(g);
        }
        return t;
    }

    /** Called by the {@link Tensor} constructor. */
    void register(Tensor t) {
        checkOpen();
        if (sealed) {
            throw sealedError(t);
        }
        tensors.add(t);
        trace.allocated(t, this);
    }

    /** Called by {@link Tensor#close()}. */
    void forget(Tensor t) {
        tensors.remove(t);
    }

    /** Refuses allocations until {@link #unseal()} (the model scope during a step, in debug runs). */
    public void seal() {
        sealed = true;
    }

    public void unseal() {
        sealed = false;
    }

    public boolean isSealed() {
        return sealed;
    }

    private IllegalStateException sealedError(Tensor t) {
        return new IllegalStateException("scope '" + path() + "' is sealed: tensor " + t.describe()
                + " would be allocated or moved into it (allocate it in the step scope, or keep it explicitly before sealing)");
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("scope '" + path() + "' used after it was closed");
        }
    }

    /** Open tensors owned by this scope and its open descendants. */
    public int liveTensors() {
        int n = tensors.size();
        for (Scope c : children) {
            n += c.liveTensors();
        }
        return n;
    }

    /** Bytes of the open tensors owned by this scope and its open descendants (views counted in full). */
    public long liveBytes() {
        long n = 0;
        for (Tensor t : tensors) {
            n += t.sizeBytes();
        }
        for (Scope c : children) {
            n += c.liveBytes();
        }
        return n;
    }

    /** Closes open children, then releases every tensor, newest first. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        RuntimeException failure = null;
        for (Scope c : children.reversed().toArray(new Scope[0])) {
            try {
                c.close();
            } catch (RuntimeException e) {
                failure = addFailure(failure, e);
            }
        }
        String by = "closed with scope '" + path() + "'";
        for (Tensor t : tensors.reversed().toArray(new Tensor[0])) {
            try {
                t.closeBy(by);
            } catch (RuntimeException e) {
                failure = addFailure(failure, e);
            }
        }
        tensors.clear();
        closed = true;
        if (parent != null) {
            parent.children.remove(this);
        }
        if (failure != null) {
            throw failure;
        }
    }

    private static RuntimeException addFailure(RuntimeException first, RuntimeException next) {
        if (first == null) {
            return next;
        }
        first.addSuppressed(next);
        return first;
    }

    // ---- factory: shortcuts for the backend's creation ops ---------------------------------------

    /** Zeros of {@code shape} and {@code dtype}. */
    public Tensor zeros(Shape shape, DType dtype) {
        return backend.full(this, shape, dtype, 0.0);
    }

    /** Every element {@code value}. */
    public Tensor full(Shape shape, DType dtype, double value) {
        return backend.full(this, shape, dtype, value);
    }

    /** Uploads host floats (row-major), rounded to {@code dtype}. */
    public Tensor fromHost(float[] data, Shape shape, DType dtype) {
        return backend.fromHost(this, data, shape, dtype);
    }

    /** Uploads host floats as an F32 tensor of the given sizes. */
    public Tensor fromHost(float[] data, int... dims) {
        return backend.fromHost(this, data, Shape.of(dims), DType.F32);
    }

    /** Uploads host longs as an I64 tensor (token ids, timesteps). */
    public Tensor fromHost(long[] data, int... dims) {
        return backend.fromHost(this, data, Shape.of(dims));
    }

    /** Uploads raw little-endian elements of {@code dtype} (e.g. a memory-mapped safetensors entry). */
    public Tensor fromHostBytes(MemorySegment bytes, Shape shape, DType dtype) {
        return backend.fromHostBytes(this, bytes, shape, dtype);
    }

    /** Standard normal values from {@code gen}. */
    public Tensor randn(Shape shape, DType dtype, Generator gen) {
        return backend.randn(this, shape, dtype, gen);
    }

    /** Uniform values in {@code [low, high)} from {@code gen}. */
    public Tensor randUniform(Shape shape, DType dtype, double low, double high, Generator gen) {
        return backend.randUniform(this, shape, dtype, low, high, gen);
    }

    @Override
    public String toString() {
        return "Scope[" + path() + (closed ? ", closed" : "") + ", " + tensors.size() + " tensors]";
    }
}
