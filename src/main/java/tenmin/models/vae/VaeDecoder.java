package tenmin.models.vae;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Params;

/**
 * sgm {@code Decoder}: z (N, z, h, w) → image (N, out, h·f, w·f), f = 2^(levels-1), no final tanh.
 * <pre>
 * h = mid.block_2(mid.attn_1(mid.block_1(conv_in(z))))
 * for level i from the deepest: (num_res_blocks + 1) × (ResnetBlock [+ AttnBlock]); Upsample unless level 0
 * out = conv_out(silu(norm_out(h)))
 * </pre>
 * Upsample: nearest 2x, then a 3x3 convolution with padding 1. Levels are stored as {@code up.<level>}.
 */
final class VaeDecoder {
    /** One resolution level: its blocks, optional attentions (one per block) and upsampling conv. */
    private record Level(List<VaeResBlock> blocks, List<VaeAttnBlock> attns, Conv2d upsample) {
    }

    private final Conv2d convIn;
    private final VaeResBlock mid1;
    private final VaeAttnBlock midAttn;
    private final VaeResBlock mid2;
    private final Level[] levels;          // by level index; run from the last to 0
    private final GroupNorm normOut;
    private final Conv2d convOut;

    VaeDecoder(Params p, VaeConfig c) {
        int n = c.levels();
        int blockIn = c.channels(n - 1);
        int featureSize = c.resolution() / c.downsampleFactor();
        convIn = new Conv2d(p.at(VaeKeys.CONV_IN), c.zChannels(), blockIn, 3, 1, 1, true);
        mid1 = new VaeResBlock(p.at(VaeKeys.MID_BLOCK_1), blockIn, blockIn);
        midAttn = new VaeAttnBlock(p.at(VaeKeys.MID_ATTN_1), blockIn);
        mid2 = new VaeResBlock(p.at(VaeKeys.MID_BLOCK_2), blockIn, blockIn);
        levels = new Level[n];
        for (int i = n - 1; i >= 0; i--) {
            Params level = p.at(VaeKeys.UP).at(i);
            int blockOut = c.channels(i);
            List<VaeResBlock> blocks = new ArrayList<>();
            List<VaeAttnBlock> attns = new ArrayList<>();
            for (int j = 0; j < c.numResBlocks() + 1; j++) {
                blocks.add(new VaeResBlock(level.at(VaeKeys.BLOCK).at(j), blockIn, blockOut));
                blockIn = blockOut;
                if (c.attentionAt(featureSize)) {
                    attns.add(new VaeAttnBlock(level.at(VaeKeys.ATTN).at(j), blockIn));
                }
            }
            Conv2d up = null;
            if (i != 0) {
                up = new Conv2d(level.at(VaeKeys.UPSAMPLE_CONV), blockIn, blockIn, 3, 1, 1, true);
                featureSize *= 2;
            }
            levels[i] = new Level(blocks, attns, up);
        }
        normOut = new GroupNorm(p.at(VaeKeys.NORM_OUT), VaeConfig.GROUPS, blockIn, VaeConfig.GROUP_NORM_EPS);
        convOut = new Conv2d(p.at(VaeKeys.CONV_OUT), blockIn, c.outChannels(), 3, 1, 1, true);
    }

    /** z (N, z, h, w) → (N, out, h·f, w·f) in {@code f}'s scope. */
    Tensor forward(Functional f, VaeOps ops, Tensor z) {
        Tensor h = ops.conv(f, convIn, z);
        h = VaeOps.then(h, t -> mid1.forward(f, ops, t));
        h = VaeOps.then(h, t -> midAttn.forward(f, ops, t));
        h = VaeOps.then(h, t -> mid2.forward(f, ops, t));
        for (Level level : reversed(levels)) {
            for (int j = 0; j < level.blocks().size(); j++) {
                VaeResBlock block = level.blocks().get(j);
                h = VaeOps.then(h, t -> block.forward(f, ops, t));
                if (!level.attns().isEmpty()) {
                    VaeAttnBlock attn = level.attns().get(j);
                    h = VaeOps.then(h, t -> attn.forward(f, ops, t));
                }
            }
            if (level.upsample() != null) {
                h = VaeOps.then(h, t -> ops.upsampleConv(f, level.upsample(), t));    // (N, C, 2H, 2W)
            }
        }
        h = VaeOps.then(h, t -> normOut.forward(f, t));
        h = VaeOps.then(h, f::silu);
        return VaeOps.then(h, t -> ops.conv(f, convOut, t));
    }

    private static List<Level> reversed(Level[] levels) {
        return Arrays.asList(levels).reversed();
    }
}
