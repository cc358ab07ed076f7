package tenmin.models.nn;

import tenmin.engine.api.Tensor;

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

    /** The attached adapter or null. */
    Adapter adapter();

    /** Attaches (or, with null, removes) the adapter. */
    void setAdapter(Adapter adapter);
}
