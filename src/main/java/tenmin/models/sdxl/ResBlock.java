package tenmin.models.sdxl;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Linear;
import tenmin.models.nn.Params;

/**
 * sgm {@code ResBlock} (no scale-shift norm, no up/down): x (N, in, H, W), emb (N, E) → (N, out, H, W).
 *
 * <pre>
 * h = in_layers.2( silu( in_layers.0(x) ) )          GroupNorm32(eps 1e-5), conv 3x3
 * h = h + emb_layers.1( silu(emb) )[:, :, None, None]
 * h = out_layers.3( silu( out_layers.0(h) ) )        (out_layers.2 is Dropout(0))
 * y = skip_connection(x) + h                          1x1 conv when in != out, else identity
 * </pre>
 * Weights are built in state-dict order (in_layers, emb_layers, out_layers, skip_connection), which is
 * also LyCORIS' module order.
 */
final class ResBlock implements UnetLayer {
    private final int out;
    private final GroupNorm inNorm;
    private final Conv2d inConv;
    private final Linear embLinear;
    private final GroupNorm outNorm;
    private final Conv2d outConv;
    private final Conv2d skip; // null when in == out

    ResBlock(Params p, int in, int out, int embDim, boolean fp32Norms) {
        p.declare("ResBlock");
        this.out = out;
        this.inNorm = new GroupNorm(p.at("in_layers.0"), UnetConfig.NORM_GROUPS, in, UnetConfig.RES_NORM_EPS, fp32Norms);
        this.inConv = new Conv2d(p.at("in_layers.2"), in, out, 3, 1, 1, true);
        this.embLinear = new Linear(p.at("emb_layers.1"), embDim, out, true);
        this.outNorm = new GroupNorm(p.at("out_layers.0"), UnetConfig.NORM_GROUPS, out, UnetConfig.RES_NORM_EPS, fp32Norms);
        this.outConv = new Conv2d(p.at("out_layers.3"), out, out, 3, 1, 1, true);
        this.skip = in == out ? null : new Conv2d(p.at("skip_connection"), in, out, 1, 1, 0, true);
    }

    @Override
    public Tensor forward(Functional f, Tensor x, Tensor emb, Tensor context) {
        Tensor h = inConv.forward(f, f.silu(inNorm.forward(f, x)));          // (N, out, H, W)
        Tensor e = embLinear.forward(f, f.silu(emb));                         // (N, out)
        h = f.add(h, f.reshape(e, e.dim(0), out, 1, 1));                      // + (N, out, 1, 1)
        h = outConv.forward(f, f.silu(outNorm.forward(f, h)));                // (N, out, H, W)
        return f.add(skip == null ? x : skip.forward(f, x), h);
    }
}
