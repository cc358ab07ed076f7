package tenmin.models;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.models.clip.ClipTextConfig;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.models.sdxl.UnetConfig;
import tenmin.models.vae.VaeConfig;

/**
 * The sizes of the four SDXL networks together. The U-Net's context width must equal the two text
 * encoders' widths added, and its vector conditioning the pooled width plus the six size embeddings.
 *
 * @param unet U-Net
 * @param te1  text encoder 1 (CLIP ViT-L layout, no projection)
 * @param te2  text encoder 2 (OpenCLIP bigG layout, with text_projection)
 * @param vae  autoencoder
 */
public record SdxlConfig(UnetConfig unet, ClipTextConfig te1, ClipTextConfig te2, VaeConfig vae) {

    public SdxlConfig {
        if (!te2.hasProjection()) {
            throw new IllegalArgumentException("text encoder 2 needs a projection (projection_dim > 0)");
        }
        if (unet.contextDim() != te1.width() + te2.width()) {
            throw new IllegalArgumentException("U-Net context_dim " + unet.contextDim() + " is not te1 width "
                    + te1.width() + " + te2 width " + te2.width());
        }
        int adm = te2.projectionDim() + SdxlConditioning.SIZE_VALUES * SdxlConditioning.SIZE_EMBED_DIM;
        if (unet.admInChannels() != adm) {
            throw new IllegalArgumentException("U-Net adm_in_channels " + unet.admInChannels() + " is not te2 projection "
                    + te2.projectionDim() + " + 6·256 = " + adm);
        }
        if (vae.embedDim() != unet.inChannels() || unet.inChannels() != unet.outChannels()) {
            throw new IllegalArgumentException("VAE latent channels " + vae.embedDim() + " do not match the U-Net's "
                    + unet.inChannels() + " in / " + unet.outChannels() + " out");
        }
    }

    /** SDXL base 1.0: what every SDXL single-file checkpoint (Pony, CompassMix, ...) has. */
    public static SdxlConfig sdxl() {
        return new SdxlConfig(UnetConfig.sdxlBase(), ClipTextConfig.SDXL_TE1, ClipTextConfig.SDXL_TE2, VaeConfig.SDXL);
    }

    /**
     * A tiny SDXL-shaped model (the sizes of the fixtures' {@code tiny-a}): the same modules, keys and code
     * paths as SDXL with 32-channel U-Net and VAE and 32-wide, 3-layer text encoders, about 15 million
     * parameters. Used by the built-in demo and the tests; with random weights it draws nothing meaningful.
     */
    public static SdxlConfig tiny() {
        UnetConfig unet = new UnetConfig(4, 4, 32, List.of(1, 2, 4), 2, List.of(4, 2), List.of(1, 1, 2), 2, 8, 64, 1568);
        ClipTextConfig te1 = new ClipTextConfig(49408, 32, 3, 4, 64, 77, ClipTextConfig.Activation.QUICK_GELU, 1e-5, 0);
        ClipTextConfig te2 = new ClipTextConfig(49408, 32, 3, 4, 128, 77, ClipTextConfig.Activation.GELU, 1e-5, 32);
        VaeConfig vae = new VaeConfig(32, new int[] {1, 2, 4, 4}, 1, 4, 4, true, 3, 3, 64, new int[0]);
        return new SdxlConfig(unet, te1, te2, vae);
    }

    /**
     * Reads a fixtures-style {@code config.json} with {@code "unet"}, {@code "te1"}, {@code "te2"} and
     * {@code "vae"} sections (sgm and Hugging Face field names).
     *
     * @throws InputException naming the file and the section or field that is wrong
     */
    public static SdxlConfig fromConfigFile(Path configJson) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(configJson));
        } catch (IOException e) {
            throw new InputException(configJson + ": cannot read JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        if (root == null || !root.isObject()) {
            throw new InputException(configJson + ": not a JSON object");
        }
        String where = configJson.toString();
        UnetConfig unet = UnetConfig.fromConfigFile(configJson);
        ClipTextConfig te1 = ClipTextConfig.fromJson(root.get("te1"), where + " \"te1\"");
        ClipTextConfig te2 = ClipTextConfig.fromJson(root.get("te2"), where + " \"te2\"");
        VaeConfig vae = VaeConfig.fromJson(root.get("vae"), where + " \"vae\"");
        try {
            return new SdxlConfig(unet, te1, te2, vae);
        } catch (IllegalArgumentException e) {
            throw new InputException(where + ": " + e.getMessage(), e);
        }
    }

    /** Latent channels (4). */
    public int latentChannels() {
        return unet.inChannels();
    }

    /** Pixels per latent cell along each side (8 on SDXL). */
    public int vaeScale() {
        return vae.downsampleFactor();
    }

    /** Latent sides must be multiples of this for the U-Net (4 on SDXL: two down-samplings). */
    public int latentMultiple() {
        return unet.downFactor(unet.levels() - 1);
    }
}
