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

    /**
     * A Linear layer's output with the branch added, {@code addTo(linear(x, weight, bias), x)}: weight (out, in) and
     * bias (out) or null already in x's dtype. Implementations may fold the branch into the weight for the call
     * ({@code Functional#loraLinear}); the caller releases weight and bias.
     */
    default Tensor addToLinear(Functional f, Tensor x, Tensor weight, Tensor bias) {
        Tensor y = f.linear(x, weight, bias);
        Tensor out = addTo(f, y, x);
        f.release(y);
        return out;
    }

    /**
     * GEGLU ({@link Functional#geglu}) of {@link #addToLinear}: a feed-forward projection of 2H outputs with the branch
     * added, then its value and gate halves. Implementations may split the layer's product in two halves for it
     * ({@code Functional#loraLinearGeglu}); the caller releases weight and bias.
     */
    default Tensor addToLinearGeglu(Functional f, Tensor x, Tensor weight, Tensor bias) {
        Tensor y = addToLinear(f, x, weight, bias);
        Tensor out = f.geglu(y);
        f.release(y);
        return out;
    }

    /**
     * A Conv2d layer's output with the branch added, {@code addTo(conv2d(x, weight, bias, stride, padding), x)}; as
     * {@link #addToLinear}.
     */
    default Tensor addToConv2d(Functional f, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        Tensor y = f.conv2d(x, weight, bias, stride, padding);
        Tensor out = addTo(f, y, x);
        f.release(y);
        return out;
    }
}
