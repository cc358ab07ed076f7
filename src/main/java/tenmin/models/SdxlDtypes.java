package tenmin.models;

import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.models.nn.Params;

/**
 * The dtype each frozen network runs in, and the dtype its weights are stored in (trainer-spec §6): on the GPU path
 * the U-Net and the text encoders are bf16 (the recipe's {@code --mixed_precision=bf16}) or fp16, on the CPU path
 * fp32 (the CPU backend would only emulate the rounding, at a cost); the VAE is fp32 everywhere
 * ({@code --no_half_vae}: caching and sample decoding in full precision). Weights are stored in the dtype their
 * network runs in, except with kohya's {@code --fp8_base} ({@link #withFp8Base}): then the U-Net's (and, where they
 * run in the training step, the text encoders') are stored as float8 e4m3fn and cast to the run dtype at each use.
 *
 * @param unet               U-Net activations (and the dtype its weights are cast to)
 * @param textEncoders       both text encoders' activations and embedding tables
 * @param vae                the autoencoder's weights and activations
 * @param unetWeights        U-Net weights: {@code unet} or F8_E4M3
 * @param textEncoderWeights the text encoders' weights other than the token and position embeddings:
 *                           {@code textEncoders} or F8_E4M3
 */
public record SdxlDtypes(DType unet, DType textEncoders, DType vae, DType unetWeights, DType textEncoderWeights) {

    public SdxlDtypes {
        for (DType d : new DType[] {unet, textEncoders, vae}) {
            if (!d.isFloat() || d.isStorageOnly()) {
                throw new IllegalArgumentException("models run in f32, bf16 or f16: " + unet + ", " + textEncoders
                        + ", " + vae);
            }
        }
        if ((unetWeights != unet && unetWeights != DType.F8_E4M3)
                || (textEncoderWeights != textEncoders && textEncoderWeights != DType.F8_E4M3)) {
            throw new IllegalArgumentException("weights are stored in their run dtype or in f8_e4m3: U-Net "
                    + unetWeights + " running in " + unet + ", text encoders " + textEncoderWeights + " in " + textEncoders);
        }
    }

    /** Weights stored in the dtype each network runs in. */
    public SdxlDtypes(DType unet, DType textEncoders, DType vae) {
        this(unet, textEncoders, vae, unet, textEncoders);
    }

    /** Everything fp32 (the CPU reference). */
    public static SdxlDtypes fp32() {
        return new SdxlDtypes(DType.F32, DType.F32, DType.F32);
    }

    /**
     * The dtypes for a device and kohya's {@code --mixed_precision} ({@code no}, {@code fp16}, {@code bf16}):
     * fp32 on the CPU, the mixed-precision dtype for the U-Net and text encoders on a GPU, VAE fp32.
     */
    public static SdxlDtypes of(Device device, String mixedPrecision) {
        if (device.kind() == Device.Kind.CPU) {
            return fp32();
        }
        DType frozen = switch (mixedPrecision) {
            case "bf16" -> DType.BF16;
            case "fp16" -> DType.F16;
            case "no" -> DType.F32;
            default -> throw new IllegalArgumentException("mixed precision '" + mixedPrecision + "' (expected no, fp16, bf16)");
        };
        return new SdxlDtypes(frozen, frozen, DType.F32);
    }

    /**
     * These dtypes with kohya's {@code --fp8_base}: the U-Net's weights stored as F8_E4M3, and the text encoders' too
     * when {@code textEncoders} is set (the reference converts them only where they sit on the GPU, that is when their
     * outputs are not cached; their embeddings stay in the run dtype). The run dtypes are unchanged.
     */
    public SdxlDtypes withFp8Base(boolean textEncoders) {
        return new SdxlDtypes(unet, this.textEncoders, vae, DType.F8_E4M3,
                textEncoders ? DType.F8_E4M3 : this.textEncoders);
    }

    /**
     * How the U-Net's weights are kept: in its run dtype, or as fp8 rounded straight from the file's values (the
     * reference converts its fp32 U-Net).
     */
    public Params.Storage unetStorage() {
        return unetWeights == DType.F8_E4M3 ? Params.Storage.fp8(unet, DType.F32) : Params.Storage.of(unet);
    }

    /**
     * How the text encoders' weights are kept: in their run dtype, or as fp8 rounded from the values in the run dtype
     * (the reference converts its text encoders after moving them to the GPU in the mixed-precision dtype: two
     * roundings, which differ from one for about one weight in fifty).
     */
    public Params.Storage textEncoderStorage() {
        return textEncoderWeights == DType.F8_E4M3 ? Params.Storage.fp8(textEncoders, textEncoders)
                : Params.Storage.of(textEncoders);
    }

    /** How the VAE's weights are kept: in its run dtype. */
    public Params.Storage vaeStorage() {
        return Params.Storage.of(vae);
    }

    @Override
    public String toString() {
        return "U-Net " + unet + weights(unetWeights, unet) + ", text encoders " + textEncoders
                + weights(textEncoderWeights, textEncoders) + ", VAE " + vae;
    }

    private static String weights(DType stored, DType run) {
        return stored == run ? "" : " (weights " + stored + ")";
    }
}
