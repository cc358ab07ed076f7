package tenmin.models;

import tenmin.engine.api.DType;
import tenmin.engine.api.Device;

/**
 * The dtype each frozen network is stored and run in (trainer-spec §6): on the GPU path the U-Net and the
 * text encoders are bf16 (the recipe's {@code --mixed_precision=bf16}) or fp16, on the CPU path fp32 (the
 * CPU backend would only emulate the rounding, at a cost); the VAE is fp32 everywhere
 * ({@code --no_half_vae}: caching and sample decoding in full precision).
 *
 * @param unet         U-Net weights and activations
 * @param textEncoders both text encoders
 * @param vae          the autoencoder
 */
public record SdxlDtypes(DType unet, DType textEncoders, DType vae) {

    public SdxlDtypes {
        if (!unet.isFloat() || !textEncoders.isFloat() || !vae.isFloat()) {
            throw new IllegalArgumentException("model dtypes must be floating: " + unet + ", " + textEncoders + ", " + vae);
        }
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

    @Override
    public String toString() {
        return "U-Net " + unet + ", text encoders " + textEncoders + ", VAE " + vae;
    }
}
