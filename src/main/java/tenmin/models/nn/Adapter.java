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
}
