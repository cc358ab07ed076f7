package tenmin.models.nn;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * A weight-bearing layer (Linear or Conv2d) that a LoRA/LoCon module can wrap: its path, geometry and
 * frozen weight, and a slot for an {@link Adapter} whose output is added to the layer's.
 */
public sealed interface AdaptableLayer permits Linear, Conv2d {

    /** Linear layers and 2-D convolutions (a 1x1 convolution is still {@code CONV}). */
    enum Kind { LINEAR, CONV }

    /** Module path relative to the model root, e.g. {@code input_blocks.1.0.in_layers.2}. */
    String path();

    Kind kind();

    int inFeatures();

    int outFeatures();

    /** Kernel size (1 for Linear). */
    int kernel();

    int stride();

    int padding();

    /** The frozen weight (out, in) or (out, in, k, k); null in meta mode. */
    Tensor weight();

    /**
     * Replaces the frozen weight by one of the same shape and dtype (a LoRA merged into it for sampling); the
     * caller owns the old tensor.
     *
     * @throws IllegalArgumentException when the shape or dtype differs
     */
    void replaceWeight(Tensor weight);

    /** {@link #replaceWeight}'s check: the replacement has the current weight's shape and dtype. */
    static void checkReplacement(String path, Tensor current, Tensor replacement) {
        if (current == null || !replacement.shape().equals(current.shape()) || replacement.dtype() != current.dtype()) {
            throw new IllegalArgumentException(path + ": a replacement weight must be " + (current == null ? "(meta)"
                    : current.describe()) + ", got " + replacement.describe());
        }
    }

    /** The attached adapter or null. */
    Adapter adapter();

    /** Attaches (or, with null, removes) the adapter. */
    void setAdapter(Adapter adapter);
}
