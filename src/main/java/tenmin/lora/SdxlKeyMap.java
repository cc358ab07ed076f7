package tenmin.lora;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * SDXL naming: kohya/LyCORIS LoRA module names ({@code lora_unet_*}, {@code lora_te1_*},
 * {@code lora_te2_*}) and the single-file checkpoint keys (SAI/sgm layout) they modify, both ways.
 *
 * <p>The rule, per checkpoint weight (postprocess-spec §1.1, trainer-spec §8.7):
 * <ul>
 * <li>{@code model.diffusion_model.X.weight} → {@code lora_unet_X} with {@code .} → {@code _};
 * <li>{@code conditioner.embedders.0.transformer.text_model.encoder.layers.X.weight} →
 *     {@code lora_te1_text_model_encoder_layers_X};
 * <li>{@code conditioner.embedders.1.model.transformer.resblocks.N.}: {@code attn.in_proj_weight} → three
 *     row chunks q, k, v (in that order) = {@code lora_te2_text_model_encoder_layers_N_self_attn_{q,k,v}_proj};
 *     {@code attn.out_proj.weight} → {@code ..._self_attn_out_proj}; {@code mlp.c_fc.weight} →
 *     {@code ..._mlp_fc1}; {@code mlp.c_proj.weight} → {@code ..._mlp_fc2}.
 * </ul>
 * Because module paths contain underscores, the reverse direction is built from a checkpoint's actual
 * key set ({@link #of}), as the reference tools do.
 */
public final class SdxlKeyMap {
    public static final String UNET_PREFIX = "model.diffusion_model.";
    public static final String TE1_PREFIX = "conditioner.embedders.0.transformer.";
    public static final String TE2_PREFIX = "conditioner.embedders.1.model.";
    public static final String VAE_PREFIX = "first_stage_model.";

    private static final String TE1_LAYERS = TE1_PREFIX + "text_model.encoder.layers.";
    private static final String TE2_LAYERS = TE2_PREFIX + "transformer.resblocks.";
    private static final Pattern TE2_KEY = Pattern.compile(Pattern.quote(TE2_LAYERS) + "(\\d+)\\.(.+)");
    private static final Pattern BLOCK = Pattern.compile("^lora_unet_(input_blocks|middle_block|output_blocks)_(\\d+)_");

    /** Where a LoRA module's delta goes: a whole checkpoint weight, or row chunk {@code chunk} of {@code chunks}. */
    public record Target(String checkpointKey, int chunk, int chunks) {
        public static Target whole(String key) {
            return new Target(key, 0, 1);
        }

        public boolean isChunk() {
            return chunks > 1;
        }

        @Override
        public String toString() {
            return isChunk() ? "(" + checkpointKey + ", " + chunk + ", " + chunks + ")" : checkpointKey;
        }
    }

    private final Map<String, Target> byModule;

    private SdxlKeyMap(Map<String, Target> byModule) {
        this.byModule = Collections.unmodifiableMap(byModule);
    }

    /**
     * The map for a checkpoint given its weight shapes: every key ending in {@code weight} with at least
     * two dimensions that the rule maps (the VAE is skipped).
     */
    public static SdxlKeyMap of(Map<String, long[]> checkpointShapes) {
        Map<String, Target> map = new TreeMap<>();
        for (Map.Entry<String, long[]> e : new TreeMap<>(checkpointShapes).entrySet()) {
            String key = e.getKey();
            if (key.startsWith(VAE_PREFIX) || !key.endsWith("weight") || e.getValue().length < 2) {
                continue;
            }
            List<String> names = loraNamesFor(key);
            for (int i = 0; i < names.size(); i++) {
                map.put(names.get(i), new Target(key, i, names.size()));
            }
        }
        return new SdxlKeyMap(map);
    }

    /**
     * The LoRA module names that modify checkpoint key {@code key}: none, one, or three (the row chunks
     * q, k, v of text encoder 2's fused {@code in_proj_weight}).
     */
    public static List<String> loraNamesFor(String key) {
        if (key.startsWith(UNET_PREFIX) && key.endsWith(".weight")) {
            return List.of("lora_unet_" + dots(key.substring(UNET_PREFIX.length(), key.length() - ".weight".length())));
        }
        if (key.startsWith(TE1_LAYERS) && key.endsWith(".weight")) {
            return List.of("lora_te1_text_model_encoder_layers_"
                    + dots(key.substring(TE1_LAYERS.length(), key.length() - ".weight".length())));
        }
        Matcher m = TE2_KEY.matcher(key);
        if (m.matches()) {
            String base = "lora_te2_text_model_encoder_layers_" + m.group(1) + "_";
            return switch (m.group(2)) {
                case "attn.in_proj_weight" -> List.of(base + "self_attn_q_proj", base + "self_attn_k_proj",
                        base + "self_attn_v_proj");
                case "attn.out_proj.weight" -> List.of(base + "self_attn_out_proj");
                case "mlp.c_fc.weight" -> List.of(base + "mlp_fc1");
                case "mlp.c_proj.weight" -> List.of(base + "mlp_fc2");
                default -> List.of();
            };
        }
        return List.of();
    }

    private static String dots(String path) {
        return path.replace('.', '_');
    }

    /** The checkpoint target of a LoRA module, or null when this checkpoint has none. */
    public Target target(String loraModule) {
        return byModule.get(loraModule);
    }

    /** All mapped LoRA module names, sorted. */
    public Map<String, Target> modules() {
        return byModule;
    }

    /**
     * The UNet block of a LoRA module ({@code "input_blocks.4"}, {@code "middle_block.1"},
     * {@code "output_blocks.0"}), or null for text-encoder and non-block UNet modules.
     */
    public static String blockOf(String loraModule) {
        Matcher m = BLOCK.matcher(loraModule);
        return m.find() ? m.group(1) + "." + Integer.parseInt(m.group(2)) : null;
    }

    /** The LoRA module name of a LoRA tensor key ({@code X.lora_down.weight}, {@code X.alpha}, ...), or null. */
    public static String moduleOf(String tensorKey) {
        for (String suffix : TENSOR_SUFFIXES) {
            if (tensorKey.endsWith(suffix)) {
                return tensorKey.substring(0, tensorKey.length() - suffix.length());
            }
        }
        return null;
    }

    /** The tensor suffixes of a kohya/LyCORIS module, in the order the reference strips them. */
    public static final List<String> TENSOR_SUFFIXES = List.of(".alpha", ".lora_down.weight", ".lora_up.weight",
            ".dora_scale", ".lora_mid.weight");
}
