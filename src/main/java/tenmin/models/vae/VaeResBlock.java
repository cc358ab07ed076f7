package tenmin.models.vae;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Params;

/**
 * sgm {@code ResnetBlock} without time embedding and without dropout (inference):
 * <pre>
 * h = conv2(silu(norm2(conv1(silu(norm1(x))))))      3x3 convolutions, GroupNorm(32, eps 1e-6)
 * y = (in == out ? x : nin_shortcut(x)) + h          nin_shortcut: 1x1 convolution
 * </pre>
 * x (N, in, H, W) → (N, out, H, W).
 */
final class VaeResBlock {
    private final GroupNorm norm1;
    private final Conv2d conv1;
    private final GroupNorm norm2;
    private final Conv2d conv2;
    private final Conv2d shortcut; // null when in == out

    VaeResBlock(Params p, int in, int out) {
        norm1 = new GroupNorm(p.at(VaeKeys.NORM1), VaeConfig.GROUPS, in, VaeConfig.GROUP_NORM_EPS);
        conv1 = new Conv2d(p.at(VaeKeys.CONV1), in, out, 3, 1, 1, true);
        norm2 = new GroupNorm(p.at(VaeKeys.NORM2), VaeConfig.GROUPS, out, VaeConfig.GROUP_NORM_EPS);
        conv2 = new Conv2d(p.at(VaeKeys.CONV2), out, out, 3, 1, 1, true);
        shortcut = in == out ? null : new Conv2d(p.at(VaeKeys.NIN_SHORTCUT), in, out, 1, 1, 0, true);
    }

    /** The block's output in {@code f}'s scope; temporaries are freed as soon as they are used. */
    Tensor forward(Functional f, VaeOps ops, Tensor x) {
        return VaeOps.scoped(f, "vae resblock", g -> {
            Tensor h = norm1.forward(g, x);                        // (N, in, H, W)
            h = VaeOps.then(h, g::silu);
            h = VaeOps.then(h, t -> ops.conv(g, conv1, t));        // (N, out, H, W)
            h = VaeOps.then(h, t -> norm2.forward(g, t));
            h = VaeOps.then(h, g::silu);
            h = VaeOps.then(h, t -> ops.conv(g, conv2, t));
            Tensor skip = shortcut == null ? x : ops.conv(g, shortcut, x);
            return VaeOps.then(h, t -> g.add(skip, t));
        });
    }
}
