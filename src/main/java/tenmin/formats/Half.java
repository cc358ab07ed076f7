package tenmin.formats;

/**
 * Conversions between fp32 and the two 16-bit float formats, with round-to-nearest-even.
 *
 * <p>fp16 uses the JDK's {@link Float#floatToFloat16} / {@link Float#float16ToFloat} (IEEE binary16,
 * round-to-nearest-even, as torch {@code .to(float16)} and numpy do). bf16 is the upper half of an fp32;
 * rounding adds {@code 0x7FFF} plus the lowest kept bit (ties to even), NaN stays a quiet NaN.
 */
public final class Half {
    private Half() {
    }

    public static float f16ToF32(short h) {
        return Float.float16ToFloat(h);
    }

    public static short f32ToF16(float f) {
        return Float.floatToFloat16(f);
    }

    public static float bf16ToF32(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    public static short f32ToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) { // NaN: keep sign and payload top bits, force quiet
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** Rounds an fp32 value to the nearest representable value of {@code type} (F16, BF16, F32). */
    public static float roundTo(float f, StDType type) {
        return switch (type) {
            case F16 -> f16ToF32(f32ToF16(f));
            case BF16 -> bf16ToF32(f32ToBf16(f));
            case F32 -> f;
            case F64 -> f;
            default -> throw new IllegalArgumentException("not a float type: " + type);
        };
    }
}
