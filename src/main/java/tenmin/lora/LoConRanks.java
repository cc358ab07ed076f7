package tenmin.lora;

import tenmin.models.nn.AdaptableLayer;

/**
 * Ranks and alphas of a LoCon network (LyCORIS {@code network_dim}/{@code network_alpha} and
 * {@code conv_dim}/{@code conv_alpha}, trainer-spec §8.3): Linear layers and 1x1 convolutions use the
 * linear pair, k×k convolutions (k > 1) the conv pair. A rank of 0 leaves those layers unwrapped.
 *
 * @param linearDim   rank of Linear and 1x1 conv modules (the recipe: 8)
 * @param linearAlpha their alpha (the recipe: 4)
 * @param convDim     rank of k×k conv modules (the recipe: 256)
 * @param convAlpha   their alpha (the recipe: 4)
 */
public record LoConRanks(int linearDim, double linearAlpha, int convDim, double convAlpha) {

    public LoConRanks {
        if (linearDim < 0 || convDim < 0) {
            throw new IllegalArgumentException("LoCon ranks must be >= 0, got " + linearDim + " and " + convDim);
        }
        if (!Double.isFinite(linearAlpha) || !Double.isFinite(convAlpha)) {
            throw new IllegalArgumentException("LoCon alphas must be finite");
        }
    }

    /** The "10 Minute SDXL LoRA" recipe: dim 8, alpha 4, conv_dim 256, conv_alpha 4. */
    public static LoConRanks recipe() {
        return new LoConRanks(8, 4.0, 256, 4.0);
    }

    /** Linear-only settings (text encoders): the same pair for everything. */
    public static LoConRanks linear(int dim, double alpha) {
        return new LoConRanks(dim, alpha, dim, alpha);
    }

    /** True for k×k convolutions with k > 1 (LyCORIS gives them conv_dim and a k×k down). */
    static boolean isSpatialConv(AdaptableLayer layer) {
        return layer.kind() == AdaptableLayer.Kind.CONV && layer.kernel() > 1;
    }

    /** The rank for {@code layer} (0: not wrapped). */
    public int rankFor(AdaptableLayer layer) {
        return isSpatialConv(layer) ? convDim : linearDim;
    }

    /** The alpha for {@code layer}. */
    public double alphaFor(AdaptableLayer layer) {
        return isSpatialConv(layer) ? convAlpha : linearAlpha;
    }
}
