package tenmin.models.clip;

import java.util.List;

import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.LayerNorm;
import tenmin.models.nn.Linear;

/**
 * One pre-LayerNorm CLIP transformer layer (HF {@code CLIPEncoderLayer}, OpenCLIP {@code ResidualAttentionBlock}):
 * <pre>
 * x = x + out_proj(attention_causal(q_proj(ln1(x)), k_proj(ln1(x)), v_proj(ln1(x))))
 * x = x + fc2(act(fc1(ln2(x))))
 * </pre>
 * with x (N, T, C), heads of D = C / heads channels, scale 1/√D, a causal mask and no padding mask
 * (fixtures README Q3). The six linear layers accept LoRA adapters; their {@link Linear#path()}s are HF
 * module paths for both encoders.
 */
final class ClipLayer {
    private final int heads;
    private final ClipTextConfig.Activation activation;
    private final LayerNorm ln1;
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear out;
    private final LayerNorm ln2;
    private final Linear fc1;
    private final Linear fc2;

    ClipLayer(ClipTextConfig config, LayerNorm ln1, Linear q, Linear k, Linear v, Linear out, LayerNorm ln2,
              Linear fc1, Linear fc2) {
        this.heads = config.heads();
        this.activation = config.activation();
        this.ln1 = ln1;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.ln2 = ln2;
        this.fc1 = fc1;
        this.fc2 = fc2;
    }

    /** x (N, T, C) → (N, T, C). */
    Tensor forward(Functional f, Tensor x) {
        Tensor h = ln1.forward(f, x);                                  // (N, T, C)
        Tensor qs = q.forward(f, h);                                   // (N, T, C)
        Tensor ks = k.forward(f, h);
        Tensor vs = v.forward(f, h);
        Tensor a = f.attentionHeads(qs, ks, vs, heads, true);          // causal, per head: (N, T, C)
        Tensor projected = out.forward(f, a);
        Tensor x1 = f.add(x, projected);
        f.release(h, qs, ks, vs, a, projected);                        // what the backward reads stays until then
        Tensor n2 = ln2.forward(f, x1);
        Tensor h1 = fc1.forward(f, n2);                                // (N, T, mlp)
        Tensor h2 = activation == ClipTextConfig.Activation.QUICK_GELU ? f.quickGelu(h1) : f.gelu(h1);
        Tensor h3 = fc2.forward(f, h2);
        Tensor y = f.add(x1, h3);                                      // (N, T, C)
        f.release(x1, n2, h1, h2, h3);
        return y;
    }

    /** The adaptable linear layers in HF module order: k, v, q, out_proj, fc1, fc2. */
    List<AdaptableLayer> linears() {
        return List.of(k, v, q, out, fc1, fc2);
    }
}
