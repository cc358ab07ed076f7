package tenmin.models.vae;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.Params;

/**
 * sgm {@code AttnBlock}: single-head softmax attention over the H·W positions of a feature map,
 * <pre>
 * h = norm(x);  q, k, v = q(h), k(h), v(h)            1x1 convolutions, GroupNorm(32, eps 1e-6)
 * y = x + proj_out(softmax(q kᵀ / √C) v)              (N, H·W, C) per image, one head of C channels
 * </pre>
 * x (N, C, H, W) → same shape.
 */
final class VaeAttnBlock {
    private final GroupNorm norm;
    private final Conv2d q;
    private final Conv2d k;
    private final Conv2d v;
    private final Conv2d projOut;

    VaeAttnBlock(Params p, int channels) {
        norm = new GroupNorm(p.at(VaeKeys.ATTN_NORM), VaeConfig.GROUPS, channels, VaeConfig.GROUP_NORM_EPS);
        q = new Conv2d(p.at(VaeKeys.ATTN_Q), channels, channels, 1, 1, 0, true);
        k = new Conv2d(p.at(VaeKeys.ATTN_K), channels, channels, 1, 1, 0, true);
        v = new Conv2d(p.at(VaeKeys.ATTN_V), channels, channels, 1, 1, 0, true);
        projOut = new Conv2d(p.at(VaeKeys.ATTN_PROJ_OUT), channels, channels, 1, 1, 0, true);
    }

    Tensor forward(Functional f, VaeOps ops, Tensor x) {
        int n = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int w = x.dim(3);
        return VaeOps.scoped(f, "vae attention", g -> {
            Tensor hn = norm.forward(g, x);                                    // (N, C, H, W)
            Tensor qh = tokens(g, ops.conv(g, q, hn));                         // (N, 1, HW, C)
            Tensor kh = tokens(g, ops.conv(g, k, hn));
            Tensor vh = tokens(g, ops.conv(g, v, hn));
            hn.close();
            Tensor a = g.attention(qh, kh, vh, false);                         // (N, 1, HW, C), scale 1/√C
            Tensor map = g.permute(g.reshape(a, n, h, w, c), 0, 3, 1, 2);     // (N, C, H, W)
            return g.add(x, ops.conv(g, projOut, map));
        });
    }

    /** (N, C, H, W) → (N, 1, H·W, C): one head whose tokens are the positions. */
    private static Tensor tokens(Functional g, Tensor map) {
        Tensor t = g.permute(map, 0, 2, 3, 1);                                 // (N, H, W, C)
        return g.reshape(t, map.dim(0), 1, map.dim(2) * map.dim(3), map.dim(1));
    }
}
