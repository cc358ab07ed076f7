package tenmin.models.clip;

/**
 * Checkpoint key names of SDXL's two text encoders in a single-file (SAI/sgm) checkpoint, and the
 * Hugging Face module paths that LoRA names are built from.
 *
 * <p>Text encoder 1 is stored with HF {@code CLIPTextModel} names (transformers 4.x, with the
 * {@code text_model.} level) under {@link #TE1_PREFIX}; text encoder 2 with OpenCLIP names under
 * {@link #TE2_PREFIX}. Both encoders' adaptable layers carry HF paths
 * ({@code text_model.encoder.layers.N.self_attn.q_proj}, {@code ...mlp.fc1}), because kohya and LyCORIS
 * name TE LoRA modules after the HF model that sd-scripts converts both encoders to
 * ({@code lora_te1_} / {@code lora_te2_} + path with {@code .} → {@code _}; fixtures README Q6).
 * The OpenCLIP → HF correspondence for text encoder 2 is the inverse of sd-scripts'
 * {@code convert_sdxl_text_encoder_2_checkpoint} (trainer-spec §4.2).
 */
public final class ClipKeys {
    private ClipKeys() {
    }

    /** Key prefix of text encoder 1 (CLIP ViT-L/14, HF names). */
    public static final String TE1_PREFIX = "conditioner.embedders.0.transformer.";
    /** Key prefix of text encoder 2 (OpenCLIP ViT-bigG/14 names). */
    public static final String TE2_PREFIX = "conditioner.embedders.1.model.";

    // ---- text encoder 1: HF CLIPTextModel ----------------------------------------------------------

    /** Module with {@code weight} (vocab, C). */
    static final String HF_TOKEN_EMBEDDING = "text_model.embeddings.token_embedding";
    /** Module with {@code weight} (positions, C). */
    static final String HF_POSITION_EMBEDDING = "text_model.embeddings.position_embedding";
    /**
     * {@code text_model.embeddings.position_ids} (I64 [1, 77], 0..76): a legacy persistent HF buffer that
     * release files carry; not a weight, accepted when present and never required.
     */
    public static final String TE1_POSITION_IDS = TE1_PREFIX + "text_model.embeddings.position_ids";
    /** Final LayerNorm (not used for SDXL's penultimate output, but part of the checkpoint). */
    static final String HF_FINAL_NORM = "text_model.final_layer_norm";

    /** HF module path of transformer layer {@code i}. */
    public static String hfLayer(int i) {
        return "text_model.encoder.layers." + i;
    }

    // Sub-modules of an HF layer.
    static final String HF_LN1 = "layer_norm1";
    static final String HF_Q = "self_attn.q_proj";
    static final String HF_K = "self_attn.k_proj";
    static final String HF_V = "self_attn.v_proj";
    static final String HF_OUT = "self_attn.out_proj";
    static final String HF_LN2 = "layer_norm2";
    static final String HF_FC1 = "mlp.fc1";
    static final String HF_FC2 = "mlp.fc2";

    // ---- text encoder 2: OpenCLIP text transformer ----------------------------------------------------

    /** Module with {@code weight} (vocab, C); HF {@code text_model.embeddings.token_embedding}. */
    static final String OC_TOKEN_EMBEDDING = "token_embedding";
    /** Tensor (positions, C); HF {@code text_model.embeddings.position_embedding.weight}. */
    static final String OC_POSITIONAL_EMBEDDING = "positional_embedding";
    /** Tensor (C, projection), applied as {@code h · P} (fixtures README Q5). */
    static final String OC_TEXT_PROJECTION = "text_projection";
    /** 0-dim CLIP contrastive temperature; unused by SDXL (sd-scripts drops it), listed for the key inventory. */
    static final String OC_LOGIT_SCALE = "logit_scale";
    /** Final LayerNorm; HF {@code text_model.final_layer_norm}. */
    static final String OC_FINAL_NORM = "ln_final";

    /** OpenCLIP module path of residual block {@code i}; HF {@link #hfLayer}. */
    static String openClipLayer(int i) {
        return "transformer.resblocks." + i;
    }

    // Sub-modules of an OpenCLIP residual block, with their HF counterparts.
    /** HF {@code layer_norm1}. */
    static final String OC_LN1 = "ln_1";
    /** Module holding {@code in_proj_weight} (3C, C) and {@code in_proj_bias} (3C): rows q; k; v (HF q/k/v_proj). */
    static final String OC_ATTN = "attn";
    static final String OC_IN_PROJ_WEIGHT = "in_proj_weight";
    static final String OC_IN_PROJ_BIAS = "in_proj_bias";
    /** HF {@code self_attn.out_proj}. */
    static final String OC_OUT = "attn.out_proj";
    /** HF {@code layer_norm2}. */
    static final String OC_LN2 = "ln_2";
    /** HF {@code mlp.fc1}. */
    static final String OC_FC1 = "mlp.c_fc";
    /** HF {@code mlp.fc2}. */
    static final String OC_FC2 = "mlp.c_proj";
}
