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

    /**
     * {@code out[off + i] = fp16 raw[i]} as fp32 for {@code i < n}. A loop of its own, called once per chunk by the
     * bulk readers, so that the JIT compiles (and vectorises) it once for all of them, without on-stack
     * replacement in each caller's long loop.
     */
    public static void f16ToF32(short[] raw, int n, float[] out, int off) {
        for (int i = 0; i < n; i++) {
            out[off + i] = Float.float16ToFloat(raw[i]);
        }
    }

    /** {@code out[off + i] = fp16 raw[i]} widened to double for {@code i < n} (see {@link #f16ToF32(short[], int, float[], int)}). */
    public static void f16ToF64(short[] raw, int n, double[] out, int off) {
        for (int i = 0; i < n; i++) {
            out[off + i] = Float.float16ToFloat(raw[i]);
        }
    }

    /** {@code out[i] = fp16 of v[off + i]} (round-to-nearest-even) for {@code i < n}. */
    public static void f32ToF16(float[] v, int off, int n, short[] out) {
        for (int i = 0; i < n; i++) {
            out[i] = Float.floatToFloat16(v[off + i]);
        }
    }

    /** Rounds an fp32 value to the nearest representable value of {@code type} (F8_E4M3, F16, BF16, F32). */
    public static float roundTo(float f, StDType type) {
        return switch (type) {
            case F8_E4M3 -> Fp8E4m3.round(f);
            case F16 -> f16ToF32(f32ToF16(f));
            case BF16 -> bf16ToF32(f32ToBf16(f));
            case F32 -> f;
            case F64 -> f;
            default -> throw new IllegalArgumentException("not a float type: " + type);
        };
    }
}
