package tenmin.models.sdxl;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.Params;

/**
 * sgm {@code Downsample} (conv 3x3, stride 2, padding 1: {@code op}) and {@code Upsample} (nearest 2x,
 * then conv 3x3: {@code conv}), both keeping the channel count: (N, C, H, W) → (N, C, H/2, W/2) or
 * (N, C, 2H, 2W).
 */
final class Resample implements UnetLayer {
    private final boolean up;
    private final Conv2d conv;

    private Resample(boolean up, Conv2d conv) {
        this.up = up;
        this.conv = conv;
    }

    static Resample down(Params p, int channels) {
        p.declare("Downsample");
        return new Resample(false, new Conv2d(p.at("op"), channels, channels, 3, 2, 1, true));
    }

    static Resample up(Params p, int channels) {
        p.declare("Upsample");
        return new Resample(true, new Conv2d(p.at("conv"), channels, channels, 3, 1, 1, true));
    }

    @Override
    public Tensor forward(Functional f, Tensor x, Tensor emb, Tensor context, boolean checkpoint) {
        return f.checkpoint(up ? "Upsample" : "Downsample", checkpoint,
                (g, in) -> conv.forward(g, up ? g.upsampleNearest2x(in.get(0)) : in.get(0)), x);
    }
}
