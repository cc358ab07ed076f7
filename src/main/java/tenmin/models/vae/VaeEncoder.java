package tenmin.models.vae;

import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Params;

/**
 * sgm {@code Encoder}: image (N, in, H, W) → moments before {@code quant_conv} (N, 2z, H/f, W/f), f = 2^(levels-1).
 * <pre>
 * h = conv_in(x)
 * for level i: num_res_blocks × (ResnetBlock [+ AttnBlock at attn_resolutions]); Downsample unless last
 * h = mid.block_2(mid.attn_1(mid.block_1(h)))
 * out = conv_out(silu(norm_out(h)))
 * </pre>
 * Downsample pads right and bottom by one, then a 3x3 stride-2 convolution without padding.
 */
final class VaeEncoder {
    private final Conv2d convIn;
    private final List<VaeLevel> levels = new ArrayList<>();
    private final VaeResBlock mid1;
    private final VaeAttnBlock midAttn;
    private final VaeResBlock mid2;
    private final GroupNorm normOut;
    private final Conv2d convOut;

    VaeEncoder(Params p, VaeConfig c) {
        convIn = new Conv2d(p.at(VaeKeys.CONV_IN), c.inChannels(), c.ch(), 3, 1, 1, true);
        int featureSize = c.resolution();
        int blockIn = c.ch();
        for (int i = 0; i < c.levels(); i++) {
            Params level = p.at(VaeKeys.DOWN).at(i);
            int blockOut = c.channels(i);
            List<VaeResBlock> blocks = VaeLevel.resBlocks(level, c.numResBlocks(), blockIn, blockOut);
            List<VaeAttnBlock> attns = VaeLevel.attentions(level, c.numResBlocks(), blockOut, c.attentionAt(featureSize));
            blockIn = blockOut;
            Conv2d down = null;
            if (i != c.levels() - 1) {
                down = new Conv2d(level.at(VaeKeys.DOWNSAMPLE_CONV), blockIn, blockIn, 3, 2, 0, true);
                featureSize /= 2;
            }
            levels.add(new VaeLevel(blocks, attns, down));
        }
        mid1 = new VaeResBlock(p.at(VaeKeys.MID_BLOCK_1), blockIn, blockIn);
        midAttn = new VaeAttnBlock(p.at(VaeKeys.MID_ATTN_1), blockIn);
        mid2 = new VaeResBlock(p.at(VaeKeys.MID_BLOCK_2), blockIn, blockIn);
        normOut = new GroupNorm(p.at(VaeKeys.NORM_OUT), VaeConfig.GROUPS, blockIn, VaeConfig.GROUP_NORM_EPS);
        int outChannels = c.doubleZ() ? 2 * c.zChannels() : c.zChannels();
        convOut = new Conv2d(p.at(VaeKeys.CONV_OUT), blockIn, outChannels, 3, 1, 1, true);
    }

    /** x (N, in, H, W), H and W multiples of the downsampling factor → (N, 2z, H/f, W/f) in {@code f}'s scope. */
    Tensor forward(Functional f, VaeOps ops, Tensor x) {
        Tensor h = ops.conv(f, convIn, x);                                     // (N, ch, H, W)
        for (VaeLevel level : levels) {
            h = level.forwardBlocks(f, ops, h);
            if (level.resample() != null) {
                h = VaeOps.then(h, t -> ops.conv(f, level.resample(), t, 0, 1, 0, 1));   // (N, C, H/2, W/2)
            }
        }
        h = VaeOps.then(h, t -> mid1.forward(f, ops, t));
        h = VaeOps.then(h, t -> midAttn.forward(f, ops, t));
        h = VaeOps.then(h, t -> mid2.forward(f, ops, t));
        h = VaeOps.then(h, t -> normOut.forward(f, t));
        h = VaeOps.then(h, f::silu);
        return VaeOps.then(h, t -> ops.conv(f, convOut, t));
    }
}
