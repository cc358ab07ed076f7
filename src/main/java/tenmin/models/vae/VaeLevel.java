package tenmin.models.vae;

import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.Params;

/**
 * One resolution level of the VAE encoder ({@code down.<i>}) or decoder ({@code up.<i>}): ResnetBlocks
 * {@code block.<j>}, each followed by AttnBlock {@code attn.<j>} when the level's feature size is one of
 * {@code attn_resolutions}, and the level's resampling convolution (null on the last encoder level and
 * on decoder level 0).
 */
record VaeLevel(List<VaeResBlock> blocks, List<VaeAttnBlock> attns, Conv2d resample) {

    /** {@code count} blocks from {@code blockIn} to {@code blockOut} channels (the first changes the width). */
    static List<VaeResBlock> resBlocks(Params level, int count, int blockIn, int blockOut) {
        List<VaeResBlock> blocks = new ArrayList<>();
        for (int j = 0; j < count; j++) {
            blocks.add(new VaeResBlock(level.at(VaeKeys.BLOCK).at(j), j == 0 ? blockIn : blockOut, blockOut));
        }
        return blocks;
    }

    /** One attention per block when {@code present}, else none. */
    static List<VaeAttnBlock> attentions(Params level, int count, int channels, boolean present) {
        List<VaeAttnBlock> attns = new ArrayList<>();
        for (int j = 0; present && j < count; j++) {
            attns.add(new VaeAttnBlock(level.at(VaeKeys.ATTN).at(j), channels));
        }
        return attns;
    }

    /** The blocks (and attentions) of this level on h, which is consumed; without the resampling. */
    Tensor forwardBlocks(Functional f, VaeOps ops, Tensor h) {
        for (int j = 0; j < blocks.size(); j++) {
            VaeResBlock block = blocks.get(j);
            h = VaeOps.then(h, t -> block.forward(f, ops, t));
            if (!attns.isEmpty()) {
                VaeAttnBlock attn = attns.get(j);
                h = VaeOps.then(h, t -> attn.forward(f, ops, t));
            }
        }
        return h;
    }
}
