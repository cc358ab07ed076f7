package tenmin.models.nn;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * A trainable branch added to a layer's output (the LoRA/LoCon bypass form):
 * {@code y = layer(x) + adapter(x)}. Implemented by {@code tenmin.lora}; models only call it.
 */
@FunctionalInterface
public interface Adapter {
    /** The branch's output for the layer input {@code x}; same shape and dtype as the layer's output. */
    Tensor apply(Functional f, Tensor x);

    /**
     * {@code y + apply(x)}: the layer output {@code y} with the branch added (what the layers call). Implementations
     * may fuse the last step of the branch into the addition; they release their own intermediates.
     */
    default Tensor addTo(Functional f, Tensor y, Tensor x) {
        Tensor branch = apply(f, x);
        Tensor out = f.add(y, branch);
        f.release(branch);
        return out;
    }
}
