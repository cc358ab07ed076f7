package tenmin.models.vae;

import static tenmin.models.nn.ConfigFields.bool;
import static tenmin.models.nn.ConfigFields.integer;
import static tenmin.models.nn.ConfigFields.integers;
import static tenmin.models.nn.ConfigFields.object;
import static tenmin.models.nn.ConfigFields.onlyKnown;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

import tenmin.core.InputException;
import tenmin.models.nn.ConfigFields;

/**
 * The {@code ddconfig} of sgm's {@code Encoder}/{@code Decoder} plus the autoencoder's {@code embed_dim}
 * (field names as in the fixtures' {@code config.json} "vae" section and sgm's YAML).
 *
 * @param ch             base channels ({@code ch}); level i has {@code ch · chMult[i]}
 * @param chMult         per-level multipliers ({@code ch_mult}); one down/up-sampling between levels
 * @param numResBlocks   ResnetBlocks per encoder level ({@code num_res_blocks}; the decoder has one more)
 * @param zChannels      latent channels of the encoder/decoder ({@code z_channels})
 * @param embedDim       latent channels after {@code quant_conv} ({@code embed_dim})
 * @param doubleZ        the encoder outputs mean and log-variance ({@code double_z}; SDXL: true)
 * @param inChannels     image channels in ({@code in_channels})
 * @param outChannels    image channels out ({@code out_ch})
 * @param resolution     nominal image size, only used to place {@code attn_resolutions} ({@code resolution})
 * @param attnResolutions feature-map sizes that get attention after every ResnetBlock ({@code attn_resolutions};
 *                       SDXL: none, so only the mid-block attention exists)
 */
public record VaeConfig(int ch, int[] chMult, int numResBlocks, int zChannels, int embedDim, boolean doubleZ,
                        int inChannels, int outChannels, int resolution, int[] attnResolutions) {

    /** GroupNorm groups of every VAE normalisation (sgm {@code Normalize}). */
    public static final int GROUPS = 32;
    /** GroupNorm epsilon of every VAE normalisation (sgm {@code Normalize}, fixtures README Q7). */
    public static final double GROUP_NORM_EPS = 1e-6;

    /** The SDXL VAE (sgm {@code configs/inference/sd_xl_base.yaml} first_stage_config). */
    public static final VaeConfig SDXL = new VaeConfig(128, new int[] {1, 2, 4, 4}, 2, 4, 4, true, 3, 3, 256,
            new int[0]);

    public VaeConfig {
        chMult = chMult.clone();
        attnResolutions = attnResolutions.clone();
        if (ch <= 0 || chMult.length == 0 || numResBlocks <= 0 || zChannels <= 0 || embedDim <= 0
                || inChannels <= 0 || outChannels <= 0 || resolution <= 0) {
            throw new IllegalArgumentException("invalid VAE config: ch " + ch + ", ch_mult " + Arrays.toString(chMult)
                    + ", num_res_blocks " + numResBlocks + ", z_channels " + zChannels + ", embed_dim " + embedDim);
        }
        for (int m : chMult) {
            if (m <= 0 || (ch * m) % GROUPS != 0) {
                throw new IllegalArgumentException("VAE ch_mult " + Arrays.toString(chMult) + " with ch " + ch
                        + ": every level's channels must be a positive multiple of " + GROUPS + " (GroupNorm groups)");
            }
        }
    }

    @Override
    public int[] chMult() {
        return chMult.clone();
    }

    @Override
    public int[] attnResolutions() {
        return attnResolutions.clone();
    }

    /** Number of resolution levels. */
    public int levels() {
        return chMult.length;
    }

    /** Channels of level {@code i}. */
    public int channels(int level) {
        return ch * chMult[level];
    }

    /** Image size / latent size (8 for SDXL). */
    public int downsampleFactor() {
        return 1 << (chMult.length - 1);
    }

    boolean attentionAt(int featureSize) {
        for (int r : attnResolutions) {
            if (r == featureSize) {
                return true;
            }
        }
        return false;
    }

    /** Fields of {@link #fromJson}; {@code dropout} is accepted and ignored (inference has none). */
    private static final Set<String> KEYS = Set.of("ch", "ch_mult", "num_res_blocks", "z_channels", "embed_dim",
            "double_z", "in_channels", "out_ch", "resolution", "attn_resolutions", "dropout");

    /** Reads the "vae" section of a fixtures-style {@code config.json}; errors name the file. */
    public static VaeConfig fromConfigFile(Path configJson) {
        return fromJson(ConfigFields.section(configJson, "vae"), configJson + ": vae");
    }

    /**
     * Reads the fields {@code ch}, {@code ch_mult}, {@code num_res_blocks}, {@code z_channels},
     * {@code embed_dim}, {@code double_z}, {@code in_channels}, {@code out_ch}, {@code resolution},
     * {@code attn_resolutions} and {@code dropout} (ignored: inference has none); any other field is an error.
     *
     * @throws InputException naming {@code where} and the field when one is missing or invalid
     */
    public static VaeConfig fromJson(JsonNode node, String where) {
        object(node, where);
        onlyKnown(node, KEYS, where);
        try {
            return new VaeConfig(integer(node, "ch", where), integers(node, "ch_mult", where),
                    integer(node, "num_res_blocks", where), integer(node, "z_channels", where),
                    integer(node, "embed_dim", where), bool(node, "double_z", where),
                    integer(node, "in_channels", where), integer(node, "out_ch", where),
                    integer(node, "resolution", where), integers(node, "attn_resolutions", where));
        } catch (IllegalArgumentException e) {
            throw new InputException(where + ": " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VaeConfig c && ch == c.ch && Arrays.equals(chMult, c.chMult)
                && numResBlocks == c.numResBlocks && zChannels == c.zChannels && embedDim == c.embedDim
                && doubleZ == c.doubleZ && inChannels == c.inChannels && outChannels == c.outChannels
                && resolution == c.resolution && Arrays.equals(attnResolutions, c.attnResolutions);
    }

    @Override
    public int hashCode() {
        return ch * 31 + Arrays.hashCode(chMult) * 17 + numResBlocks + zChannels * 7 + embedDim * 11;
    }

    @Override
    public String toString() {
        return "VaeConfig[ch=" + ch + ", ch_mult=" + Arrays.toString(chMult) + ", num_res_blocks=" + numResBlocks
                + ", z_channels=" + zChannels + ", embed_dim=" + embedDim + ", double_z=" + doubleZ + ", in_channels="
                + inChannels + ", out_ch=" + outChannels + ", resolution=" + resolution + ", attn_resolutions="
                + Arrays.toString(attnResolutions) + "]";
    }
}
