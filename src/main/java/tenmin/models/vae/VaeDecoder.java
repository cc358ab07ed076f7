package tenmin.models.vae;

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
    private final Conv2d convIn;
    private final VaeResBlock mid1;
    private final VaeAttnBlock midAttn;
    private final VaeResBlock mid2;
    private final VaeLevel[] levels;          // by level index; run from the last to 0
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
        levels = new VaeLevel[n];
        for (int i = n - 1; i >= 0; i--) {
            Params level = p.at(VaeKeys.UP).at(i);
            int blockOut = c.channels(i);
            int count = c.numResBlocks() + 1;
            List<VaeResBlock> blocks = VaeLevel.resBlocks(level, count, blockIn, blockOut);
            List<VaeAttnBlock> attns = VaeLevel.attentions(level, count, blockOut, c.attentionAt(featureSize));
            blockIn = blockOut;
            Conv2d up = null;
            if (i != 0) {
                up = new Conv2d(level.at(VaeKeys.UPSAMPLE_CONV), blockIn, blockIn, 3, 1, 1, true);
                featureSize *= 2;
            }
            levels[i] = new VaeLevel(blocks, attns, up);
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
        for (VaeLevel level : Arrays.asList(levels).reversed()) {
            h = level.forwardBlocks(f, ops, h);
            if (level.resample() != null) {
                h = VaeOps.then(h, t -> ops.upsampleConv(f, level.resample(), t));    // (N, C, 2H, 2W)
            }
        }
        h = VaeOps.then(h, t -> normOut.forward(f, t));
        h = VaeOps.then(h, f::silu);
        return VaeOps.then(h, t -> ops.conv(f, convOut, t));
    }
}
