package tenmin.lora;

import tenmin.engine.api.Shape;
import tenmin.models.nn.AdaptableLayer;

/**
 * One module of a LoCon network before its tensors exist: the layer it wraps, its kohya/LyCORIS name,
 * rank and alpha. Cheap to compute for the real SDXL model built on {@code MetaParams}.
 *
 * <p>Shapes (trainer-spec §8.3): Linear down (r, in), up (out, r); conv down (r, in, k, k) with the
 * layer's stride and padding, up (out, r, 1, 1) — a 1x1 conv is a conv with k = 1.
 *
 * @param name  e.g. {@code lora_unet_input_blocks_4_1_proj_in}
 * @param layer the wrapped layer
 * @param rank  r
 * @param alpha the stored alpha; the branch is scaled by alpha / r
 */
public record LoConTarget(String name, AdaptableLayer layer, int rank, double alpha) {

    public LoConTarget {
        if (rank <= 0) {
            throw new IllegalArgumentException(name + ": rank must be positive, got " + rank);
        }
    }

    /** {@code prefix + "_" + path} with dots replaced by underscores (LyCORIS {@code lora_name}). */
    public static String nameFor(String prefix, String path) {
        return prefix + "_" + path.replace('.', '_');
    }

    public boolean isConv() {
        return layer.kind() == AdaptableLayer.Kind.CONV;
    }

    /** {@code linear} or {@code conv} (the fixtures' and LyCORIS' module kinds). */
    public String kind() {
        return isConv() ? "conv" : "linear";
    }

    public int in() {
        return layer.inFeatures();
    }

    public int out() {
        return layer.outFeatures();
    }

    public int kernel() {
        return layer.kernel();
    }

    public int stride() {
        return layer.stride();
    }

    public int padding() {
        return layer.padding();
    }

    /** (r, in) or (r, in, k, k). */
    public Shape downShape() {
        return isConv() ? Shape.of(rank, in(), kernel(), kernel()) : Shape.of(rank, in());
    }

    /** (out, r) or (out, r, 1, 1). */
    public Shape upShape() {
        return isConv() ? Shape.of(out(), rank, 1, 1) : Shape.of(out(), rank);
    }

    /** Fan-in of the down projection: in·k·k (LyCORIS' Kaiming bound is 1/√fanIn). */
    public long downFanIn() {
        return (long) in() * kernel() * kernel();
    }

    /** Trainable values: down plus up. */
    public long parameterCount() {
        return downShape().numel() + upShape().numel();
    }
}
