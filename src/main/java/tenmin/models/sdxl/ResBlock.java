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
    public Tensor forward(Functional f, Tensor x, Tensor emb, Tensor context, boolean checkpoint) {
        return f.checkpoint("ResBlock", checkpoint, (g, in) -> body(g, in.get(0), in.get(1)), x, emb);
    }

    private Tensor body(Functional f, Tensor x, Tensor emb) {
        Tensor n1 = inNorm.forward(f, x);
        Tensor s1 = f.silu(n1);
        Tensor h1 = inConv.forward(f, s1);                                    // (N, out, H, W)
        Tensor se = f.silu(emb);
        Tensor e = embLinear.forward(f, se);                                  // (N, out)
        Tensor e4 = f.reshape(e, e.dim(0), out, 1, 1);
        Tensor h2 = f.add(h1, e4);                                            // + (N, out, 1, 1)
        f.release(n1, s1, se, e, e4, h1);
        Tensor n2 = outNorm.forward(f, h2);
        Tensor s2 = f.silu(n2);
        Tensor h3 = outConv.forward(f, s2);                                   // (N, out, H, W)
        f.release(h2, n2, s2);
        Tensor sk = skip == null ? x : skip.forward(f, x);
        Tensor y = f.add(sk, h3);
        f.release(h3, skip == null ? null : sk);
        return y;
    }
}
