package tenmin.models.sdxl;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;

/**
 * The arguments of sgm's {@code UNetModel} that SDXL uses (generative-models
 * {@code sgm/modules/diffusionmodules/openaimodel.py}); {@code use_spatial_transformer}, linear
 * proj_in/out, {@code num_classes="sequential"}, no scale-shift norm, no resblock up/down and
 * dropout 0 are fixed.
 *
 * @param inChannels            latent channels in (4)
 * @param outChannels           latent channels out (4)
 * @param modelChannels         C0: level i has {@code C0 * channelMult[i]} channels; time/label embeddings are 4·C0 wide
 * @param channelMult           per-level channel multipliers; a down-sampling between consecutive levels
 * @param numResBlocks          ResBlocks per level in the encoder (the decoder has one more)
 * @param attentionResolutions  down-sampling factors (1, 2, 4, ...) whose levels get a SpatialTransformer
 * @param transformerDepth      BasicTransformerBlocks per SpatialTransformer, per level
 * @param transformerDepthMiddle BasicTransformerBlocks in {@code middle_block.1}
 * @param numHeadChannels       channels per attention head (heads = channels / numHeadChannels)
 * @param contextDim            cross-attention context width (2048 = 768 + 1280 on SDXL)
 * @param admInChannels         width of the vector conditioning y (2816 = 1280 + 6·256 on SDXL)
 */
public record UnetConfig(int inChannels, int outChannels, int modelChannels, List<Integer> channelMult,
                         int numResBlocks, List<Integer> attentionResolutions, List<Integer> transformerDepth,
                         int transformerDepthMiddle, int numHeadChannels, int contextDim, int admInChannels) {

    /** Groups of every GroupNorm in the U-Net (sgm {@code normalization}, {@code Normalize}). */
    public static final int NORM_GROUPS = 32;
    /** eps of ResBlock and {@code out.0} group norms (sgm {@code GroupNorm32}, torch default). */
    public static final double RES_NORM_EPS = 1e-5;
    /** eps of {@code SpatialTransformer.norm} (sgm {@code Normalize}). */
    public static final double TRANSFORMER_NORM_EPS = 1e-6;
    /** eps of the BasicTransformerBlock layer norms (torch default). */
    public static final double LAYER_NORM_EPS = 1e-5;

    private static final Set<String> KEYS = Set.of("in_channels", "out_channels", "model_channels", "channel_mult",
            "num_res_blocks", "attention_resolutions", "transformer_depth", "transformer_depth_middle",
            "num_head_channels", "context_dim", "adm_in_channels", "num_classes", "use_linear_in_transformer",
            "derived_levels", "time_embed_dim", "fixed");

    public UnetConfig {
        channelMult = List.copyOf(channelMult);
        attentionResolutions = List.copyOf(attentionResolutions);
        transformerDepth = List.copyOf(transformerDepth);
        if (channelMult.isEmpty() || transformerDepth.size() != channelMult.size()) {
            throw new IllegalArgumentException("U-Net config: transformer_depth " + transformerDepth
                    + " needs one entry per channel_mult level " + channelMult);
        }
        if (modelChannels <= 0 || numResBlocks <= 0 || numHeadChannels <= 0 || inChannels <= 0 || outChannels <= 0) {
            throw new IllegalArgumentException("U-Net config: sizes must be positive");
        }
        for (int level = 0; level < channelMult.size(); level++) {
            int c = modelChannels * channelMult.get(level);
            if (c % NORM_GROUPS != 0) {
                throw new IllegalArgumentException("U-Net config: level " + level + " has " + c
                        + " channels, not a multiple of " + NORM_GROUPS + " norm groups");
            }
            if (attentionResolutions.contains(1 << level) && c % numHeadChannels != 0) {
                throw new IllegalArgumentException("U-Net config: level " + level + " has " + c
                        + " channels, not a multiple of num_head_channels " + numHeadChannels);
            }
        }
    }

    /** SDXL base 1.0 ({@code configs/inference/sd_xl_base.yaml}): 2.6 billion parameters. */
    public static UnetConfig sdxlBase() {
        return new UnetConfig(4, 4, 320, List.of(1, 2, 4), 2, List.of(4, 2), List.of(0, 2, 10), 10, 64, 2048, 2816);
    }

    /** Reads the {@code "unet"} section of a fixtures-style {@code config.json}; errors name the file and key. */
    public static UnetConfig fromConfigFile(Path configJson) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(configJson));
        } catch (IOException e) {
            throw new InputException(configJson + ": cannot read JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        JsonNode unet = root == null ? null : root.get("unet");
        if (unet == null || !unet.isObject()) {
            throw new InputException(configJson + ": no \"unet\" object");
        }
        return fromJson(unet, configJson + ": unet");
    }

    /** Parses sgm {@code UNetModel} argument names ({@code model_channels}, ...); {@code where} prefixes errors. */
    public static UnetConfig fromJson(JsonNode unet, String where) {
        for (Iterator<String> it = unet.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!KEYS.contains(key)) {
                throw new InputException(where + ": unknown key \"" + key + "\"");
            }
        }
        requireValue(unet, where, "num_classes", "sequential");
        requireValue(unet, where, "use_linear_in_transformer", "true");
        List<Integer> mult = ints(unet, where, "channel_mult");
        JsonNode depth = unet.get("transformer_depth");
        List<Integer> depths;
        if (depth != null && depth.isInt()) {
            depths = new ArrayList<>();
            for (int i = 0; i < mult.size(); i++) {
                depths.add(depth.intValue());
            }
        } else {
            depths = ints(unet, where, "transformer_depth");
        }
        int middle = unet.has("transformer_depth_middle") ? integer(unet, where, "transformer_depth_middle")
                : depths.getLast();
        try {
            return new UnetConfig(integer(unet, where, "in_channels"), integer(unet, where, "out_channels"),
                    integer(unet, where, "model_channels"), mult, integer(unet, where, "num_res_blocks"),
                    ints(unet, where, "attention_resolutions"), depths, middle,
                    integer(unet, where, "num_head_channels"), integer(unet, where, "context_dim"),
                    integer(unet, where, "adm_in_channels"));
        } catch (IllegalArgumentException e) {
            throw new InputException(where + ": " + e.getMessage());
        }
    }

    /** Number of resolution levels (3 on SDXL). */
    public int levels() {
        return channelMult.size();
    }

    /** Channels of level {@code level}: {@code modelChannels * channelMult[level]}. */
    public int channels(int level) {
        return modelChannels * channelMult.get(level);
    }

    /** Down-sampling factor of level {@code level} (1, 2, 4, ...). */
    public int downFactor(int level) {
        return 1 << level;
    }

    /** True when the blocks of {@code level} carry a SpatialTransformer (sgm: {@code ds in attention_resolutions}). */
    public boolean hasAttention(int level) {
        return attentionResolutions.contains(downFactor(level));
    }

    /** Attention heads at {@code channels} channels. */
    public int heads(int channels) {
        return channels / numHeadChannels;
    }

    /** Width of the time and label embeddings (4·C0 = 1280 on SDXL). */
    public int timeEmbedDim() {
        return 4 * modelChannels;
    }

    private static void requireValue(JsonNode n, String where, String key, String expected) {
        JsonNode v = n.get(key);
        if (v != null && !v.asText().equals(expected)) {
            throw new InputException(where + ": \"" + key + "\" is " + v + "; only " + expected + " (SDXL) is supported");
        }
    }

    private static int integer(JsonNode n, String where, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isInt()) {
            throw new InputException(where + ": \"" + key + "\" must be an integer" + (v == null ? " (missing)" : ", got " + v));
        }
        return v.intValue();
    }

    private static List<Integer> ints(JsonNode n, String where, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.isArray()) {
            throw new InputException(where + ": \"" + key + "\" must be a list of integers" + (v == null ? " (missing)" : ", got " + v));
        }
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isInt()) {
                throw new InputException(where + ": \"" + key + "\" must be a list of integers, got " + v);
            }
            out.add(e.intValue());
        }
        return out;
    }
}
