package tenmin.lora;

import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.models.nn.AdaptableLayer;

/**
 * A LoCon network merged into copies of its layers' weights while this is open: each attached module's layer gets
 * {@code cast(W + multiplier · (alpha/r) · up·down)} (computed in fp32, stored in W's dtype) and no branch; closing
 * puts the original weights and the modules back, exactly as they were, and frees the copies. For sampling during
 * training on a GPU, where a bf16 step with the recipe LoCon's rank-256 3x3 branches took 2.42 s per image and with
 * the LoCon merged 1.53 s (H100, 2026-11-26): the copies cost the adapted weights' bytes again
 * ({@link #extraBytes}). The merged image differs from the branch form by the rounding of the merged weight, as
 * ComfyUI's and A1111's do.
 */
public final class TemporaryMerge implements AutoCloseable {
    private final Scope scope;
    private final List<LoConModule> modules = new ArrayList<>();
    private final List<Tensor> originals = new ArrayList<>();
    private boolean closed;

    private TemporaryMerge(Scope scope) {
        this.scope = scope;
    }

    /** Device bytes the merged copies take: the weights of every layer {@code net} adapts. */
    public static long extraBytes(LoConNetwork net) {
        long n = 0;
        for (LoConModule m : net.modules()) {
            n += m.layer().weight().sizeBytes();
        }
        return n;
    }

    /** Merges {@code net} (attached) into copies of its layers' weights, owned by a child of {@code parent}. */
    public static TemporaryMerge open(LoConNetwork net, Scope parent) {
        if (!net.isAttached()) {
            throw new IllegalStateException("the LoCon network is not attached to its layers");
        }
        TemporaryMerge merge = new TemporaryMerge(parent.child("LoCon merged for sampling"));
        try {
            for (LoConModule m : net.modules()) {
                merge.swapIn(m);
            }
        } catch (RuntimeException | Error e) {
            merge.close();
            throw e;
        }
        return merge;
    }

    private void swapIn(LoConModule m) {
        AdaptableLayer layer = m.layer();
        Tensor w = layer.weight();
        Backend be = scope.backend();
        Tensor merged;
        try (Scope tmp = scope.child("merge")) {
            Tensor sum = m.addDelta(tmp, be.cast(tmp, w, DType.F32), m.multiplier());
            merged = w.dtype() == DType.F32 ? scope.adopt(sum) : be.cast(scope, sum, w.dtype());
        }
        layer.replaceWeight(merged.named(w.name()));
        layer.setAdapter(null);
        modules.add(m);
        originals.add(w);
    }

    /** Puts the original weights and the modules back and frees the merged copies. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = modules.size() - 1; i >= 0; i--) {
            AdaptableLayer layer = modules.get(i).layer();
            layer.replaceWeight(originals.get(i));
            layer.setAdapter(modules.get(i));
        }
        scope.close();
    }
}
