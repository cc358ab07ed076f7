package tenmin.models.sdxl;

import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.GroupNorm;
import tenmin.models.nn.LayerNorm;
import tenmin.models.nn.Linear;
import tenmin.models.nn.Params;

/**
 * sgm {@code SpatialTransformer} with linear projections (SDXL): x (N, C, H, W), context (N, T, D) →
 * (N, C, H, W).
 *
 * <pre>
 * t = proj_in( norm(x) as (N, H·W, C) )           GroupNorm(32, eps 1e-6), Linear C → C
 * t = transformer_blocks.i(t, context)            i = 0 .. depth-1
 * y = proj_out(t) as (N, C, H, W) + x
 * </pre>
 * BasicTransformerBlock (sgm, {@code disable_self_attn=False}):
 * <pre>
 * t = attn1(norm1(t)) + t                         self-attention
 * t = attn2(norm2(t), context) + t                cross-attention on the text context
 * t = ff(norm3(t)) + t                            GEGLU feed-forward: net.0.proj C → 8C, a·gelu(gate), net.2 4C → C
 * </pre>
 * Attention: heads = C / num_head_channels, softmax(q kᵀ / √d) v (sgm {@code CrossAttention}; to_q/k/v
 * without bias, to_out.0 with bias). Weights are built in sgm's registration order (attn1, ff, attn2,
 * norm1-3), which is the checkpoint's key order and LyCORIS' module order.
 */
final class SpatialTransformer implements UnetLayer {
    private final GroupNorm norm;
    private final Linear projIn;
    private final List<TransformerBlock> blocks = new ArrayList<>();
    private final Linear projOut;

    SpatialTransformer(Params p, int channels, int heads, int depth, int contextDim, boolean fp32Norms) {
        p.declare("SpatialTransformer");
        this.norm = new GroupNorm(p.at("norm"), UnetConfig.NORM_GROUPS, channels, UnetConfig.TRANSFORMER_NORM_EPS,
                fp32Norms);
        this.projIn = new Linear(p.at("proj_in"), channels, channels, true);
        for (int i = 0; i < depth; i++) {
            blocks.add(new TransformerBlock(p.at("transformer_blocks").at(i), channels, heads, contextDim));
        }
        this.projOut = new Linear(p.at("proj_out"), channels, channels, true);
    }

    @Override
    public Tensor forward(Functional f, Tensor x, Tensor emb, Tensor context, boolean checkpoint) {
        int n = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int w = x.dim(3);
        Tensor normed = norm.forward(f, x);
        Tensor p = f.permute(normed, 0, 2, 3, 1);                    // (N, H, W, C)
        Tensor rows = f.reshape(p, n, h * w, c);
        Tensor t = projIn.forward(f, rows);                          // (N, HW, C)
        f.release(normed, p, rows);
        for (TransformerBlock b : blocks) {                          // each recomputed on its own when checkpointing
            Tensor next = f.checkpoint("BasicTransformerBlock", checkpoint, (g, in) -> b.forward(g, in.get(0), in.get(1)),
                    t, context);                                     // (N, HW, C)
            f.release(t);
            t = next;
        }
        Tensor o = projOut.forward(f, t);                            // (N, HW, C)
        Tensor o4 = f.reshape(o, n, h, w, c);
        Tensor y = f.permute(o4, 0, 3, 1, 2);                        // (N, C, H, W)
        f.release(t, o, o4);
        Tensor out = f.add(y, x);
        f.release(y);
        return out;
    }

    /** sgm {@code BasicTransformerBlock}. */
    private static final class TransformerBlock {
        private final Attention attn1;
        private final Linear ffProj;   // ff.net.0.proj: C → 8C (GEGLU value and gate)
        private final Linear ffOut;    // ff.net.2: 4C → C
        private final Attention attn2;
        private final LayerNorm norm1;
        private final LayerNorm norm2;
        private final LayerNorm norm3;

        TransformerBlock(Params p, int dim, int heads, int contextDim) {
            p.declare("BasicTransformerBlock");
            this.attn1 = new Attention(p.at("attn1"), dim, dim, heads);
            p.at("ff").declare("FeedForward");
            this.ffProj = new Linear(p.at("ff.net.0.proj"), dim, 8 * dim, true);
            this.ffOut = new Linear(p.at("ff.net.2"), 4 * dim, dim, true);
            this.attn2 = new Attention(p.at("attn2"), dim, contextDim, heads);
            this.norm1 = new LayerNorm(p.at("norm1"), dim, UnetConfig.LAYER_NORM_EPS);
            this.norm2 = new LayerNorm(p.at("norm2"), dim, UnetConfig.LAYER_NORM_EPS);
            this.norm3 = new LayerNorm(p.at("norm3"), dim, UnetConfig.LAYER_NORM_EPS);
        }

        Tensor forward(Functional f, Tensor t, Tensor context) {
            Tensor n1 = norm1.forward(f, t);
            Tensor a1 = attn1.forward(f, n1, null);
            Tensor t1 = f.add(a1, t);                                    // (N, HW, C)
            f.release(n1, a1);
            Tensor n2 = norm2.forward(f, t1);
            Tensor a2 = attn2.forward(f, n2, context);
            Tensor t2 = f.add(a2, t1);
            f.release(n2, a2, t1);
            Tensor n3 = norm3.forward(f, t2);
            Tensor gated = ffProj.forwardGeglu(f, n3);                   // (N, HW, 8C) → (N, HW, 4C)
            f.release(n3);
            Tensor ff = ffOut.forward(f, gated);                         // (N, HW, C)
            Tensor out = f.add(ff, t2);
            f.release(gated, ff, t2);
            return out;
        }
    }

    /** sgm {@code CrossAttention}: self-attention when the context is null. */
    private static final class Attention {
        private final int heads;
        private final Linear toQ;
        private final Linear toK;
        private final Linear toV;
        private final Linear toOut;

        Attention(Params p, int dim, int contextDim, int heads) {
            p.declare("CrossAttention");
            this.heads = heads;
            this.toQ = new Linear(p.at("to_q"), dim, dim, false);
            this.toK = new Linear(p.at("to_k"), contextDim, dim, false);
            this.toV = new Linear(p.at("to_v"), contextDim, dim, false);
            this.toOut = new Linear(p.at("to_out.0"), dim, dim, true);
        }

        /** x (N, Tq, C), context (N, Tk, D) or null → (N, Tq, C). */
        Tensor forward(Functional f, Tensor x, Tensor context) {
            Tensor kv = context == null ? x : context;
            Tensor q = toQ.forward(f, x);                         // (N, Tq, C)
            Tensor k = toK.forward(f, kv);                        // (N, Tk, C)
            Tensor v = toV.forward(f, kv);                        // (N, Tk, C)
            Tensor merged = f.attentionHeads(q, k, v, heads, false); // per head softmax(q kᵀ / √d) v: (N, Tq, C)
            f.release(q, k, v);
            Tensor out = toOut.forward(f, merged);                // (N, Tq, C)
            f.release(merged);
            return out;
        }
    }
}
