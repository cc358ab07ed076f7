package tenmin.models.vae;

/**
 * Checkpoint key names of the SDXL VAE: sgm's {@code AutoencoderKL} ({@code Encoder}, {@code Decoder},
 * {@code quant_conv}, {@code post_quant_conv}) under {@link #PREFIX}. Module paths, e.g.
 * {@code encoder.down.1.block.0.nin_shortcut}, {@code decoder.up.3.upsample.conv}, {@code encoder.mid.attn_1.q}.
 */
public final class VaeKeys {
    private VaeKeys() {
    }

    /** Key prefix of the VAE in a single-file SDXL checkpoint. */
    public static final String PREFIX = "first_stage_model.";

    static final String ENCODER = "encoder";
    static final String DECODER = "decoder";
    /** Conv 1x1 (2z → 2·embed_dim) after the encoder. */
    static final String QUANT_CONV = "quant_conv";
    /** Conv 1x1 (embed_dim → z) before the decoder. */
    static final String POST_QUANT_CONV = "post_quant_conv";

    // Inside the encoder / decoder.
    static final String CONV_IN = "conv_in";
    static final String NORM_OUT = "norm_out";
    static final String CONV_OUT = "conv_out";
    /** Encoder levels: {@code down.<level>}. */
    static final String DOWN = "down";
    /** Decoder levels: {@code up.<level>} (indexed by level, built from the deepest up). */
    static final String UP = "up";
    /** ResnetBlocks of a level: {@code block.<j>}. */
    static final String BLOCK = "block";
    /** Attention after ResnetBlock j of a level: {@code attn.<j>} (only at {@code attn_resolutions}). */
    static final String ATTN = "attn";
    static final String DOWNSAMPLE_CONV = "downsample.conv";
    static final String UPSAMPLE_CONV = "upsample.conv";
    static final String MID_BLOCK_1 = "mid.block_1";
    static final String MID_ATTN_1 = "mid.attn_1";
    static final String MID_BLOCK_2 = "mid.block_2";

    // Inside a ResnetBlock.
    static final String NORM1 = "norm1";
    static final String CONV1 = "conv1";
    static final String NORM2 = "norm2";
    static final String CONV2 = "conv2";
    /** Conv 1x1 on the skip path when the channel count changes. */
    static final String NIN_SHORTCUT = "nin_shortcut";

    // Inside an AttnBlock (all 1x1 convolutions).
    static final String ATTN_NORM = "norm";
    static final String ATTN_Q = "q";
    static final String ATTN_K = "k";
    static final String ATTN_V = "v";
    static final String ATTN_PROJ_OUT = "proj_out";
}
