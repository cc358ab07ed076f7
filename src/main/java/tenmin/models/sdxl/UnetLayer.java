package tenmin.models.sdxl;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * One module inside a U-Net block (sgm {@code TimestepEmbedSequential} dispatches on the module type:
 * ResBlocks get the embedding, SpatialTransformers the context, everything else only x).
 */
sealed interface UnetLayer permits ResBlock, SpatialTransformer, Resample {

    /**
     * @param x          (N, C, H, W) activations in the compute dtype
     * @param emb        (N, 4·C0) time + label embedding
     * @param context    (N, T, contextDim) cross-attention context
     * @param checkpoint recompute in the backward instead of keeping activations, at the reference's granularity
     *                   (sd-scripts' {@code sdxl_original_unet}: each ResBlock, each BasicTransformerBlock, each
     *                   Up/Downsample; a SpatialTransformer's norm and projections keep theirs)
     */
    Tensor forward(Functional f, Tensor x, Tensor emb, Tensor context, boolean checkpoint);
}
