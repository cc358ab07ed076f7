package tenmin.models.clip;

import static tenmin.models.nn.ConfigFields.integer;
import static tenmin.models.nn.ConfigFields.number;
import static tenmin.models.nn.ConfigFields.object;
import static tenmin.models.nn.ConfigFields.onlyKnown;
import static tenmin.models.nn.ConfigFields.text;

import java.nio.file.Path;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

import tenmin.core.InputException;
import tenmin.models.nn.ConfigFields;

/**
 * Sizes of one CLIP text transformer, in the fields of a Hugging Face {@code CLIPTextConfig}
 * (the fixtures' {@code config.json} "te1"/"te2" sections use the same names).
 *
 * @param vocabSize     token embedding rows ({@code vocab_size}, 49408)
 * @param width         hidden size C ({@code hidden_size})
 * @param layers        transformer layers ({@code num_hidden_layers})
 * @param heads         attention heads; C must be a multiple ({@code num_attention_heads})
 * @param mlpWidth      MLP inner width ({@code intermediate_size})
 * @param maxPositions  position embedding rows ({@code max_position_embeddings}, 77)
 * @param activation    MLP activation ({@code hidden_act}: {@code quick_gelu} or {@code gelu})
 * @param layerNormEps  LayerNorm epsilon ({@code layer_norm_eps})
 * @param projectionDim width of the pooled projection ({@code projection_dim}); 0 when the encoder has none
 */
public record ClipTextConfig(int vocabSize, int width, int layers, int heads, int mlpWidth, int maxPositions,
                             Activation activation, double layerNormEps, int projectionDim) {

    /** The MLP non-linearity. */
    public enum Activation {
        /** {@code x σ(1.702 x)}: OpenAI CLIP ViT-L/14 (SDXL text encoder 1). */
        QUICK_GELU("quick_gelu"),
        /** Exact erf GELU: OpenCLIP ViT-bigG/14 (SDXL text encoder 2). */
        GELU("gelu");

        private final String hfName;

        Activation(String hfName) {
            this.hfName = hfName;
        }

        /** The {@code hidden_act} value of a Hugging Face config. */
        public String hfName() {
            return hfName;
        }
    }

    /** SDXL text encoder 1: CLIP ViT-L/14 text tower (trainer-spec §4.2). */
    public static final ClipTextConfig SDXL_TE1 =
            new ClipTextConfig(49408, 768, 12, 12, 3072, 77, Activation.QUICK_GELU, 1e-5, 0);

    /** SDXL text encoder 2: OpenCLIP ViT-bigG/14 text tower with its 1280 → 1280 projection (trainer-spec §4.2). */
    public static final ClipTextConfig SDXL_TE2 =
            new ClipTextConfig(49408, 1280, 32, 20, 5120, 77, Activation.GELU, 1e-5, 1280);

    public ClipTextConfig {
        if (vocabSize <= 0 || width <= 0 || layers <= 0 || heads <= 0 || mlpWidth <= 0 || maxPositions <= 0
                || projectionDim < 0 || !(layerNormEps > 0) || activation == null) {
            throw new IllegalArgumentException("invalid CLIP text config: " + summary(vocabSize, width, layers, heads,
                    mlpWidth, maxPositions, activation, layerNormEps, projectionDim));
        }
        if (width % heads != 0) {
            throw new IllegalArgumentException("CLIP text config: hidden size " + width + " is not a multiple of "
                    + heads + " heads");
        }
    }

    /** Channels per attention head. */
    public int headDim() {
        return width / heads;
    }

    /** True when the encoder has a {@code text_projection} (text encoder 2). */
    public boolean hasProjection() {
        return projectionDim > 0;
    }

    /** Fields read by {@link #fromJson}, and HF bookkeeping fields that do not change the forward pass (ignored). */
    private static final Set<String> KEYS = Set.of("vocab_size", "hidden_size", "intermediate_size",
            "num_hidden_layers", "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
            "projection_dim", "attention_dropout", "dropout", "initializer_range", "initializer_factor",
            "bos_token_id", "eos_token_id", "pad_token_id", "model_type", "torch_dtype", "architectures",
            "transformers_version", "_name_or_path");

    /** Reads section {@code section} ("te1" or "te2") of a fixtures-style {@code config.json}; errors name the file. */
    public static ClipTextConfig fromConfigFile(Path configJson, String section) {
        return fromJson(ConfigFields.section(configJson, section), configJson + ": " + section);
    }

    /**
     * Reads a Hugging Face {@code CLIPTextConfig} object ({@code vocab_size}, {@code hidden_size},
     * {@code intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads},
     * {@code max_position_embeddings}, {@code hidden_act}, {@code layer_norm_eps}, optional
     * {@code projection_dim}); HF bookkeeping fields (dropouts, token ids, initialisers, model type) are
     * ignored and any other field is an error. {@code where} names the source in errors.
     *
     * @throws InputException naming {@code where} and the field when one is missing or invalid
     */
    public static ClipTextConfig fromJson(JsonNode node, String where) {
        object(node, where);
        onlyKnown(node, KEYS, where);
        String act = text(node, "hidden_act", where);
        Activation activation = switch (act) {
            case "quick_gelu" -> Activation.QUICK_GELU;
            case "gelu" -> Activation.GELU;
            default -> throw new InputException(where + ": hidden_act \"" + act + "\" is not supported"
                    + " (expected quick_gelu or gelu)");
        };
        int projection = integer(node, "projection_dim", where, 0);
        try {
            return new ClipTextConfig(integer(node, "vocab_size", where), integer(node, "hidden_size", where),
                    integer(node, "num_hidden_layers", where), integer(node, "num_attention_heads", where),
                    integer(node, "intermediate_size", where), integer(node, "max_position_embeddings", where),
                    activation, number(node, "layer_norm_eps", where), projection);
        } catch (IllegalArgumentException e) {
            throw new InputException(where + ": " + e.getMessage(), e);
        }
    }

    private static String summary(int vocabSize, int width, int layers, int heads, int mlpWidth, int maxPositions,
                                  Activation activation, double eps, int projectionDim) {
        return "vocab " + vocabSize + ", width " + width + ", layers " + layers + ", heads " + heads + ", mlp "
                + mlpWidth + ", positions " + maxPositions + ", act " + activation + ", eps " + eps + ", projection "
                + projectionDim;
    }
}
