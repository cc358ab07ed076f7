package tenmin.models.clip;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.LayerNorm;
import tenmin.models.nn.Linear;
import tenmin.models.nn.Params;

/**
 * A CLIP text transformer as SDXL uses it (trainer-spec §4.2): token + position embeddings, pre-LN
 * causal transformer layers, and the outputs SDXL reads — the penultimate hidden state (HF
 * {@code hidden_states[-2]}, no final LayerNorm), the final-LayerNorm output of the last layer, and for
 * text encoder 2 the pooled projection of the first end-of-text token.
 *
 * <p>Built from {@link Params} in one of two checkpoint layouts: {@link #hf} (text encoder 1, HF names)
 * or {@link #openClip} (text encoder 2, OpenCLIP names with a fused q/k/v projection that is split into
 * three adaptable layers over its row blocks, so a LoRA on {@code q_proj} changes exactly rows [0, C)).
 * The token and position embeddings are kept in the compute dtype {@link Params#dtype()} (bf16 on the GPU path, f32
 * on the CPU), which the whole encoder runs in and its outputs have; the other frozen weights in the stored dtype
 * ({@link Params#storage()}: the same, or fp8 with {@code --fp8_base}, as kohya converts everything but
 * {@code text_model.embeddings}), cast to the compute dtype where they are used.
 */
public final class ClipTextEncoder {
    /** How the pooled vector is projected (fixtures README Q5). */
    public enum PooledProjection {
        /** SAI / sgm / open_clip / ComfyUI: {@code pooled = h_eos · text_projection} (the default). */
        SAI,
        /** sd-scripts: the checkpoint matrix is copied untransposed into an HF Linear, {@code pooled = h_eos · text_projectionᵀ}. */
        KOHYA
    }

    /**
     * Hidden states of one forward pass.
     *
     * @param penultimate (N, T, C): output of layer {@code layers - 2} (HF {@code hidden_states[-2]}), no final LayerNorm
     * @param last        (N, T, C): final LayerNorm of the last layer's output (HF {@code last_hidden_state});
     *                    null unless asked for
     */
    public record Hidden(Tensor penultimate, Tensor last) {
    }

    private final ClipTextConfig config;
    private final Tensor tokenEmbedding;    // (V, C)
    private final Tensor positionEmbedding; // (P, C)
    private final List<ClipLayer> layers;
    private final LayerNorm finalNorm;
    private final Tensor textProjection;    // (C, proj) or null
    private final List<AdaptableLayer> adaptable;

    private ClipTextEncoder(ClipTextConfig config, Tensor tokenEmbedding, Tensor positionEmbedding,
                            List<ClipLayer> layers, LayerNorm finalNorm, Tensor textProjection) {
        this.config = config;
        this.tokenEmbedding = tokenEmbedding;
        this.positionEmbedding = positionEmbedding;
        this.layers = List.copyOf(layers);
        this.finalNorm = finalNorm;
        this.textProjection = textProjection;
        List<AdaptableLayer> all = new ArrayList<>();
        for (ClipLayer l : layers) {
            all.addAll(l.linears());
        }
        this.adaptable = Collections.unmodifiableList(all);
    }

    // ---- building -------------------------------------------------------------------------------

    /**
     * Text encoder 1 in the HF {@code CLIPTextModel} layout; {@code p} is the model root (key prefix
     * {@link ClipKeys#TE1_PREFIX} for an SDXL checkpoint). {@code text_model.embeddings.position_ids} is
     * not read. A {@code projection_dim} in {@code config} is not supported in this layout.
     */
    public static ClipTextEncoder hf(Params p, ClipTextConfig config) {
        if (config.hasProjection()) {
            throw new IllegalArgumentException("the HF text encoder layout has no text_projection (projection_dim "
                    + config.projectionDim() + ")");
        }
        int c = config.width();
        int mlp = config.mlpWidth();
        Tensor token = p.at(ClipKeys.HF_TOKEN_EMBEDDING).getEmbedding("weight", Shape.of(config.vocabSize(), c));
        Tensor position = p.at(ClipKeys.HF_POSITION_EMBEDDING).getEmbedding("weight", Shape.of(config.maxPositions(), c));
        List<ClipLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.layers(); i++) {
            Params l = p.at(ClipKeys.hfLayer(i));
            // Construction follows the HF state-dict order (k, v, q, out_proj, layer_norm1, fc1, fc2, layer_norm2).
            Linear k = new Linear(l.at(ClipKeys.HF_K), c, c, true);
            Linear v = new Linear(l.at(ClipKeys.HF_V), c, c, true);
            Linear q = new Linear(l.at(ClipKeys.HF_Q), c, c, true);
            Linear out = new Linear(l.at(ClipKeys.HF_OUT), c, c, true);
            LayerNorm ln1 = new LayerNorm(l.at(ClipKeys.HF_LN1), c, config.layerNormEps());
            Linear fc1 = new Linear(l.at(ClipKeys.HF_FC1), c, mlp, true);
            Linear fc2 = new Linear(l.at(ClipKeys.HF_FC2), mlp, c, true);
            LayerNorm ln2 = new LayerNorm(l.at(ClipKeys.HF_LN2), c, config.layerNormEps());
            layers.add(new ClipLayer(config, ln1, q, k, v, out, ln2, fc1, fc2));
        }
        LayerNorm finalNorm = new LayerNorm(p.at(ClipKeys.HF_FINAL_NORM), c, config.layerNormEps());
        return new ClipTextEncoder(config, token, position, layers, finalNorm, null);
    }

    /**
     * Text encoder 2 in the OpenCLIP layout; {@code p} is the model root (key prefix
     * {@link ClipKeys#TE2_PREFIX} for an SDXL checkpoint). Requires {@code config.projectionDim() > 0}.
     * {@code logit_scale} is listed in meta mode (it is part of the checkpoint inventory) but never read.
     */
    public static ClipTextEncoder openClip(Params p, ClipTextConfig config) {
        if (!config.hasProjection()) {
            throw new IllegalArgumentException("the OpenCLIP text encoder layout needs projection_dim > 0");
        }
        int c = config.width();
        int mlp = config.mlpWidth();
        Tensor position = p.getEmbedding(ClipKeys.OC_POSITIONAL_EMBEDDING, Shape.of(config.maxPositions(), c));
        Tensor projection = p.get(ClipKeys.OC_TEXT_PROJECTION, Shape.of(c, config.projectionDim()));
        if (p.isMeta()) {
            p.get(ClipKeys.OC_LOGIT_SCALE, Shape.scalar());
        }
        Tensor token = p.at(ClipKeys.OC_TOKEN_EMBEDDING).getEmbedding("weight", Shape.of(config.vocabSize(), c));
        List<ClipLayer> layers = new ArrayList<>();
        for (int i = 0; i < config.layers(); i++) {
            Params l = p.at(ClipKeys.openClipLayer(i));
            String hf = ClipKeys.hfLayer(i) + ".";
            LayerNorm ln1 = new LayerNorm(l.at(ClipKeys.OC_LN1), c, config.layerNormEps());
            Params attn = l.at(ClipKeys.OC_ATTN);
            Tensor inWeight = attn.get(ClipKeys.OC_IN_PROJ_WEIGHT, Shape.of(3 * c, c)); // rows q; k; v
            Tensor inBias = attn.get(ClipKeys.OC_IN_PROJ_BIAS, Shape.of(3 * c));
            Linear k = new Linear(p, hf + ClipKeys.HF_K, c, c, rows(p, inWeight, 1, c), rows(p, inBias, 1, c));
            Linear v = new Linear(p, hf + ClipKeys.HF_V, c, c, rows(p, inWeight, 2, c), rows(p, inBias, 2, c));
            Linear q = new Linear(p, hf + ClipKeys.HF_Q, c, c, rows(p, inWeight, 0, c), rows(p, inBias, 0, c));
            closeIfPresent(inWeight);
            closeIfPresent(inBias);
            Linear out = relocated(p, l.at(ClipKeys.OC_OUT), hf + ClipKeys.HF_OUT, c, c);
            LayerNorm ln2 = new LayerNorm(l.at(ClipKeys.OC_LN2), c, config.layerNormEps());
            Linear fc1 = relocated(p, l.at(ClipKeys.OC_FC1), hf + ClipKeys.HF_FC1, c, mlp);
            Linear fc2 = relocated(p, l.at(ClipKeys.OC_FC2), hf + ClipKeys.HF_FC2, mlp, c);
            layers.add(new ClipLayer(config, ln1, q, k, v, out, ln2, fc1, fc2));
        }
        LayerNorm finalNorm = new LayerNorm(p.at(ClipKeys.OC_FINAL_NORM), c, config.layerNormEps());
        return new ClipTextEncoder(config, token, position, layers, finalNorm, projection);
    }

    /** Block {@code index} of {@code c} rows of a fused (3C, ..) tensor, copied (null in meta mode). */
    private static Tensor rows(Params p, Tensor fused, int index, int c) {
        if (fused == null) {
            return null;
        }
        Scope s = p.scope();
        Tensor t = s.backend().narrow(s, fused, 0, index * c, c);
        return t.named(fused.name() + "[" + index * c + ":" + (index + 1) * c + "]");
    }

    private static void closeIfPresent(Tensor t) {
        if (t != null) {
            t.close();
        }
    }

    /** A Linear read at checkpoint module {@code at} but registered under the HF path {@code hfPath}. */
    private static Linear relocated(Params root, Params at, String hfPath, int in, int out) {
        Tensor w = at.get("weight", Shape.of(out, in));
        Tensor b = at.get("bias", Shape.of(out));
        return new Linear(root, hfPath, in, out, w, b);
    }

    // ---- running --------------------------------------------------------------------------------

    public ClipTextConfig config() {
        return config;
    }

    /**
     * Runs the encoder on token ids (N, T) I64, T ≤ max positions. {@code withLast}: also run the last
     * layer and the final LayerNorm (otherwise the last layer is skipped: it cannot influence the
     * penultimate state). {@code checkpointing}: recompute each layer during backward instead of keeping
     * its activations.
     */
    public Hidden forward(Functional f, Tensor ids, boolean withLast, boolean checkpointing) {
        if (ids.rank() != 2 || ids.dtype() != DType.I64) {
            throw new IllegalArgumentException("text encoder ids must be (N, T) i64, got " + ids.describe());
        }
        int t = ids.dim(1);
        if (t > config.maxPositions()) {
            throw new IllegalArgumentException("text encoder ids " + ids.describe() + ": more than "
                    + config.maxPositions() + " tokens");
        }
        Tensor tokens = f.embedding(tokenEmbedding, ids);                       // (N, T, C)
        Tensor positions = t == config.maxPositions() ? positionEmbedding
                : f.narrow(positionEmbedding, 0, 0, t);                        // (T, C)
        Tensor h = f.add(tokens, positions);                                   // (N, T, C)
        f.release(tokens, positions == positionEmbedding ? null : positions);
        int n = layers.size();
        for (int i = 0; i < n - 1; i++) {
            Tensor next = runLayer(f, i, h, checkpointing);
            f.release(h);                                                      // each layer's input is used once
            h = next;
        }
        Tensor penultimate = h;
        Tensor last = null;
        if (withLast) {
            Tensor lastLayer = runLayer(f, n - 1, h, checkpointing);
            last = finalNorm.forward(f, lastLayer);
            f.release(lastLayer);
        }
        return new Hidden(penultimate, last);
    }

    private Tensor runLayer(Functional f, int i, Tensor h, boolean checkpointing) {
        ClipLayer layer = layers.get(i);
        return f.checkpoint("clip layer " + i, checkpointing, (g, in) -> layer.forward(g, in.get(0)), h);
    }

    /**
     * The pooled output of text encoder 2: {@code last} (N, T, C) at each row's first end-of-text token
     * (the argmax of its ids, as sgm/open_clip; equal to sd-scripts' first 49407 because 49407 is the
     * largest id), projected → (N, projection). Reads {@code ids} to the host (a sync point); callers that
     * hold the ids on the host use {@link #pooled(Functional, Tensor, long[], PooledProjection)}.
     */
    public Tensor pooled(Functional f, Tensor last, Tensor ids, PooledProjection projection) {
        return pooled(f, last, ids.toHostLongs(), projection);
    }

    /**
     * {@link #pooled(Functional, Tensor, Tensor, PooledProjection)} with the token ids (N·T, row-major) as the host
     * has them: no download, so the device queue keeps running.
     */
    public Tensor pooled(Functional f, Tensor last, long[] id, PooledProjection projection) {
        if (!config.hasProjection()) {
            throw new IllegalStateException("this text encoder has no text_projection");
        }
        if (projection == PooledProjection.KOHYA && config.projectionDim() != config.width()) {
            throw new IllegalArgumentException("the kohya pooled orientation needs a square text_projection, not "
                    + config.width() + " x " + config.projectionDim());
        }
        int n = last.dim(0);
        int t = last.dim(1);
        if (id.length != (long) n * t) {
            throw new IllegalArgumentException(id.length + " token ids for states " + last.describe());
        }
        long[] rows = new long[n];                          // row n·T + eos(n) of the flattened states
        for (int b = 0; b < n; b++) {
            rows[b] = (long) b * t + argmax(id, b * t, t);
        }
        Tensor index = f.scope().fromHost(rows, n);
        Tensor flat = f.reshape(last, n * t, last.dim(2));  // (N·T, C)
        Tensor eos = f.embedding(flat, index);              // (N, C)
        Tensor w = f.cast(textProjection, eos.dtype());     // (C, proj): a copy when stored as fp8
        Tensor pooled = projection == PooledProjection.SAI
                ? f.matmul(eos, w)                          // (N, C) · (C, proj)
                : f.matmul(eos, w, false, true);            // (N, C) · (C, proj)ᵀ, needs C == proj
        if (w != textProjection) {
            f.release(w);                                   // the cast made here
        }
        return pooled;
    }

    /** Index of the first maximum of {@code ids[from, from + count)} (torch.argmax: first occurrence). */
    static int argmax(long[] ids, int from, int count) {
        int best = 0;
        for (int j = 1; j < count; j++) {
            if (ids[from + j] > ids[from + best]) {
                best = j;
            }
        }
        return best;
    }

    /**
     * The layers that accept LoRA adapters (q, k, v, out_proj, fc1, fc2 of every layer, in HF module
     * order), each with its HF module path; the LoCon network names them {@code lora_te1_/lora_te2_} +
     * path with {@code .} → {@code _}.
     */
    public List<AdaptableLayer> adaptableLayers() {
        return adaptable;
    }

    /**
     * The adaptable layers of transformer layer {@code i} (k, v, q, out_proj, fc1, fc2). The last layer's
     * get no gradient when only the penultimate state is used (fixtures README Q4).
     */
    public List<AdaptableLayer> adaptableLayers(int i) {
        return layers.get(i).linears();
    }

    /** Number of transformer layers. */
    public int layerCount() {
        return layers.size();
    }
}
