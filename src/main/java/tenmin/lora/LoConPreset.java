package tenmin.lora;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import tenmin.models.nn.AdaptableLayer;

/**
 * Which layers LyCORIS {@code algo=locon preset=full} wraps (trainer-spec §8.2): every Linear and Conv
 * inside a module of a target class. LyCORIS walks {@code named_modules()} and compares class names; we
 * compare the class each model {@linkplain tenmin.models.nn.Params#declare declares} for its modules
 * (U-Net) or, for the text encoders, the HF module path that names the class's position.
 *
 * <p>Results keep the model's module order (the order LyCORIS creates and saves modules in).
 */
public final class LoConPreset {
    /** kohya U-Net prefix. */
    public static final String UNET = "lora_unet";
    /** Text encoder 1 (CLIP ViT-L) prefix. */
    public static final String TE1 = "lora_te1";
    /** Text encoder 2 (OpenCLIP bigG, HF names) prefix. */
    public static final String TE2 = "lora_te2";

    /**
     * U-Net target classes of preset {@code full}: LyCORIS lists kohya/diffusers' names
     * ({@code ResnetBlock2D}, {@code Transformer2DModel}, {@code Downsample2D}, {@code Upsample2D}); the
     * sgm classes in the same roles and at the same paths are {@code ResBlock}, {@code SpatialTransformer},
     * {@code Downsample}, {@code Upsample}. Stem conv, output conv, time and label embeddings stay frozen.
     */
    public static final Set<String> FULL_UNET_CLASSES = Set.of("ResBlock", "SpatialTransformer", "Downsample",
            "Upsample", "ResnetBlock2D", "Transformer2DModel", "Downsample2D", "Upsample2D");

    /** Which text-encoder modules are wrapped (trainer-spec §8.2: depends on the transformers version). */
    public enum TextEncoderModules {
        /** Only {@code mlp.fc1}/{@code mlp.fc2} (CLIPMLP): 88 modules on SDXL, what LyCORIS ≤ 3.1.0 does with transformers ≥ 4.43. */
        MLP_ONLY,
        /** Attention q/k/v/out_proj and MLP fc1/fc2 (CLIPAttention + CLIPMLP): 264 modules on SDXL. */
        FULL
    }

    private static final Pattern TE_MLP = Pattern.compile("(?:^|.*\\.)encoder\\.layers\\.\\d+\\.mlp\\.[^.]+");
    private static final Pattern TE_ATTENTION = Pattern.compile("(?:^|.*\\.)encoder\\.layers\\.\\d+\\.self_attn\\.[^.]+");

    private LoConPreset() {
    }

    /**
     * The U-Net modules of preset {@code full}: layers with an enclosing module whose declared class is
     * in {@link #FULL_UNET_CLASSES}, named {@code lora_unet_<path>}.
     *
     * @param layers        the model's layers in module order ({@code Unet.layers()})
     * @param moduleClasses module path → class name ({@code Unet.moduleClasses()})
     */
    public static List<LoConTarget> unet(List<AdaptableLayer> layers, Map<String, String> moduleClasses, LoConRanks ranks) {
        List<LoConTarget> out = new ArrayList<>();
        for (AdaptableLayer layer : layers) {
            if (insideClass(layer.path(), moduleClasses, FULL_UNET_CLASSES)) {
                add(out, UNET, layer, ranks);
            }
        }
        return out;
    }

    /**
     * Text-encoder modules: Linear layers whose HF path puts them in a CLIP encoder layer's
     * {@code mlp} (and, for {@link TextEncoderModules#FULL}, {@code self_attn}), e.g.
     * {@code text_model.encoder.layers.0.mlp.fc1} → {@code lora_te1_text_model_encoder_layers_0_mlp_fc1}.
     *
     * @param prefix {@link #TE1} or {@link #TE2}
     */
    public static List<LoConTarget> textEncoder(String prefix, List<AdaptableLayer> layers, TextEncoderModules which,
                                                LoConRanks ranks) {
        List<LoConTarget> out = new ArrayList<>();
        for (AdaptableLayer layer : layers) {
            String path = layer.path();
            boolean selected = TE_MLP.matcher(path).matches()
                    || (which == TextEncoderModules.FULL && TE_ATTENTION.matcher(path).matches());
            if (selected) {
                add(out, prefix, layer, ranks);
            }
        }
        return out;
    }

    private static void add(List<LoConTarget> out, String prefix, AdaptableLayer layer, LoConRanks ranks) {
        int rank = ranks.rankFor(layer);
        if (rank > 0) {
            out.add(new LoConTarget(LoConTarget.nameFor(prefix, layer.path()), layer, rank, ranks.alphaFor(layer)));
        }
    }

    /** True when a proper ancestor of {@code path} is declared with one of {@code classes}. */
    static boolean insideClass(String path, Map<String, String> moduleClasses, Set<String> classes) {
        for (int dot = path.lastIndexOf('.'); dot > 0; dot = path.lastIndexOf('.', dot - 1)) {
            String cls = moduleClasses.get(path.substring(0, dot));
            if (cls != null && classes.contains(cls)) {
                return true;
            }
        }
        return false;
    }
}
