package tenmin.engine.autograd;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.Switch;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/**
 * The record of a forward pass: ops in execution order, and which tensors carry gradient.
 *
 * <p>{@link #backward} walks the ops in reverse. Activation gradients live in a map owned by the
 * tape, allocated in the tape's scope and released as soon as the op that produced the activation
 * has run its backward; each op's temporaries live in a scratch scope closed right after it. Map
 * entries are never modified in place (a second contribution makes a new sum), so an entry may share
 * storage with another one. Leaf gradients ({@link Tensor#requiresGrad()}) are added into
 * {@link Tensor#grad()} in place, all together when the root tape's backward ends ({@link #addLeafGrad}).
 *
 * <p>Forward activations live in their scope until it closes, unless the model code
 * {@linkplain Functional#release releases} them: then they close as soon as no recorded op still reads their
 * values ({@link Op#reads()}), during the forward for most intermediates, during the backward for the rest.
 *
 * <p>A sub-tape recomputes a checkpointed block during backward: it collects the gradients of the
 * block's inputs ("captured") instead of passing them on, and refuses activations of the outer tape
 * that the block uses without declaring them as inputs.
 */
final class Tape {
    /** {@link #addLeafGrad}'s deferral: on unless the property or {@code TENMIN_DEFER_GRADS} is 0. */
    static final String DEFER_PROPERTY = "tenmin.deferGrads";
    private static final Switch DEFER_LEAF_GRADS = new Switch(DEFER_PROPERTY, "TENMIN_DEFER_GRADS");

    private record Entry(Op op, Tensor[] outputs) {
    }

    private final Scope scope;
    private final Tape parent;
    private final String blockName;
    private final Set<Tensor> captured;
    private final List<Entry> entries = new ArrayList<>();
    private final Set<Tensor> tracked = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<Tensor, Tensor> grads = new IdentityHashMap<>();
    /** The other way round: each partial gradient in {@link #grads} and the tensor it is the gradient of. */
    private final Map<Tensor, Tensor> gradKeys = new IdentityHashMap<>();
    /** Recorded ops whose backward still reads each tensor ({@link Op#reads()}). */
    private final Map<Tensor, Integer> readers = new IdentityHashMap<>();
    /** Released tensors waiting for their last reader's backward. */
    private final Set<Tensor> pendingRelease = Collections.newSetFromMap(new IdentityHashMap<>());
    /** The root tape's parameter gradients of this backward and the leaves' gradients they go into, in order. */
    private final List<Tensor> leafGrads = new ArrayList<>();
    private final List<Tensor> leafTargets = new ArrayList<>();

    /** A top-level tape whose activation gradients live in {@code scope}. */
    Tape(Scope scope) {
        this(scope, null, null, List.of());
    }

    private Tape(Scope scope, Tape parent, String blockName, List<Tensor> captured) {
        this.scope = scope;
        this.parent = parent;
        this.blockName = blockName;
        this.captured = Collections.newSetFromMap(new IdentityHashMap<>());
        this.captured.addAll(captured);
    }

    /** A tape for recomputing checkpointed block {@code name}, collecting the gradients of {@code inputs}. */
    Tape subTape(Scope subScope, String name, List<Tensor> inputs) {
        return new Tape(subScope, this, name, inputs);
    }

    Scope scope() {
        return scope;
    }

    Backend backend() {
        return scope.backend();
    }

    /** True when {@code t} carries gradient on this tape: a leaf that requires grad, a recorded output or a captured input. */
    boolean tracks(Tensor t) {
        if (t == null) {
            return false;
        }
        if (t.requiresGrad() || tracked.contains(t) || captured.contains(t)) {
            return true;
        }
        if (parent != null && parent.tracks(t)) {
            throw new IllegalStateException("checkpointed block '" + blockName + "' uses " + t.describe()
                    + ", which carries gradient but is not one of the block's inputs; pass it as an input");
        }
        return false;
    }

    boolean captures(Tensor t) {
        return captured.contains(t);
    }

    void record(Op op, Tensor... outputs) {
        entries.add(new Entry(op, outputs.clone()));
        Collections.addAll(tracked, outputs);
        for (Tensor t : op.reads()) {
            if (t != null) {
                readers.merge(t, 1, Integer::sum);
            }
        }
    }

    /**
     * The model code is done with {@code t}: it is closed now when no recorded op's backward reads its values,
     * else once the last such op has run its backward (or when its scope closes, if the backward never runs).
     */
    void release(Tensor t) {
        if (readers.containsKey(t)) {
            pendingRelease.add(t);
        } else {
            t.close();
        }
    }

    /** One reader of each of {@code op}'s tensors is done; closes released tensors nobody reads any more. */
    private void doneReading(Op op) {
        for (Tensor t : op.reads()) {
            if (t == null) {
                continue;
            }
            Integer n = readers.get(t);
            if (n == null) {
                continue;
            }
            if (n > 1) {
                readers.put(t, n - 1);
            } else {
                readers.remove(t);
                if (pendingRelease.remove(t)) {
                    t.close();
                }
            }
        }
    }

    /** The current (partial) gradient of {@code t}, or null. */
    Tensor gradOf(Tensor t) {
        return grads.get(t);
    }

    /** Removes and returns the partial gradient of {@code t} (ownership passes to the caller), or null. */
    Tensor takeGrad(Tensor t) {
        Tensor g = grads.remove(t);
        if (g != null) {
            gradKeys.remove(g);
        }
        return g;
    }

    /**
     * Adds {@code g} into the gradient of leaf {@code t} (a tensor that requires grad). A {@code g} made in
     * {@code scratch}, or this tape's partial gradient of the running op's output (a cast's: an fp32 parameter's
     * 16-bit gradient), is kept by the root tape and added with the others when its backward ends (one
     * {@code Backend#axpyIntoAll}: on the torch backend three ops for the trainer's 2,104 LoCon gradients instead of
     * two each); any other is added at once. Map entries are never written in place, so one kept past its op keeps
     * its values. {@code TENMIN_DEFER_GRADS=0} adds each at once.
     */
    void addLeafGrad(Tensor t, Tensor g, Scope scratch) {
        Tensor key = gradKeys.get(g);
        boolean fresh = g.scope() == scratch && key == null;
        if ((fresh || key != null) && DEFER_LEAF_GRADS.on()) {
            if (key != null) {
                takeGrad(key);                               // the tape would close it after the op: kept instead
            }
            Tape root = root();
            root.leafTargets.add(t.grad());
            root.leafGrads.add(root.scope.adopt(g));
        } else {
            backend().axpyInto(t.grad(), 1.0, g);
        }
    }

    private Tape root() {
        return parent == null ? this : parent.root();
    }

    /** Sums the kept parameter gradients into their leaves and frees them. */
    private void addLeafGrads() {
        try {
            if (!leafGrads.isEmpty()) {
                backend().axpyIntoAll(leafTargets, leafGrads);
            }
        } finally {
            for (Tensor g : leafGrads) {
                g.close();
            }
            leafGrads.clear();
            leafTargets.clear();
        }
    }

    /**
     * Adds {@code g} to the gradient of activation {@code t}: the first contribution is stored (moved
     * out of {@code scratch} when it was made there, otherwise aliased), later ones are summed into a
     * new tensor.
     */
    void addGrad(Tensor t, Tensor g, Scope scratch) {
        Tensor existing = grads.get(t);
        Tensor stored;
        if (existing == null) {
            boolean fresh = scratch != null && g.scope() == scratch && !gradKeys.containsKey(g);
            stored = fresh ? scope.adopt(g) : backend().reshape(scope, g, g.shape());
        } else {
            stored = backend().add(scope, existing, g, 1.0);
            gradKeys.remove(existing);
            existing.close();
        }
        stored.named(t.name().isEmpty() ? "grad" : "grad." + t.name());
        grads.put(t, stored);
        gradKeys.put(stored, t);
    }

    /**
     * Runs backward from {@code roots} seeded with {@code seeds} (same shapes), then forgets the
     * recorded ops. Returns the gradients left in the map (the captured inputs of a sub-tape), owned
     * by this tape's scope; a top-level tape returns an empty map.
     */
    Map<Tensor, Tensor> backward(List<Tensor> roots, List<Tensor> seeds) {
        if (roots.size() != seeds.size()) {
            throw new IllegalArgumentException("backward: " + roots.size() + " roots but " + seeds.size() + " seeds");
        }
        for (int i = 0; i < roots.size(); i++) {
            seed(roots.get(i), seeds.get(i));
        }
        for (int i = entries.size() - 1; i >= 0; i--) {
            Entry e = entries.get(i);
            boolean any = false;
            for (Tensor o : e.outputs()) {
                any |= grads.containsKey(o);
            }
            if (any) {
                try (Scope scratch = scope.child("backward " + e.op().name())) {
                    e.op().backward(new Backprop(this, e.outputs(), scratch));
                }
                for (Tensor o : e.outputs()) {
                    Tensor g = takeGrad(o);
                    if (g != null) {
                        g.close();
                    }
                }
            }
            doneReading(e.op());
        }
        if (parent == null) {
            addLeafGrads();
        }
        for (Tensor t : pendingRelease) {
            t.close();
        }
        pendingRelease.clear();
        readers.clear();
        Map<Tensor, Tensor> left = new IdentityHashMap<>();
        for (Map.Entry<Tensor, Tensor> kv : grads.entrySet()) {
            if (captured.contains(kv.getKey())) {
                left.put(kv.getKey(), kv.getValue());
            } else {
                kv.getValue().close();
            }
        }
        grads.clear();
        gradKeys.clear();
        entries.clear();
        tracked.clear();
        return left;
    }

    private void seed(Tensor root, Tensor seed) {
        root.checkOpen();
        if (!seed.shape().equals(root.shape()) || seed.dtype() != root.dtype()) {
            throw new IllegalArgumentException("backward: seed " + seed.describe() + " does not match root " + root.describe());
        }
        if (!tracks(root)) {
            throw new IllegalArgumentException("backward: " + root.describe()
                    + " does not depend on any tensor that requires grad (or was made without a recording tape)");
        }
        if (root.requiresGrad()) {
            backend().axpyInto(root.grad(), 1.0, seed);
        } else {
            addGrad(root, seed, null);
        }
    }
}
