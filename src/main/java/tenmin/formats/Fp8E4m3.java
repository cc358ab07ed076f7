package tenmin.formats;

/**
 * Conversions between fp32 and float8 e4m3fn (PyTorch's {@code torch.float8_e4m3fn}, safetensors' {@code F8_E4M3}),
 * the storage of kohya's {@code --fp8_base}.
 *
 * <p>The format (OCP 8-bit floating point, "FN": finite, with NaN): a sign bit, 4 exponent bits with bias 7 and 3
 * mantissa bits. Exponent field 0 holds the subnormals m · 2⁻⁹ (and ±0); fields 1-15 hold (1 + m/8) · 2^(e−7), except
 * the codes 0x7F and 0xFF, which are NaN. There are no infinities; the largest finite value is 448 (0x7E).
 *
 * <p>Encoding rounds to nearest, ties to even (on the subnormals too), as c10's {@code fp8e4m3fn_from_fp32_value}, which
 * {@code tensor.to(torch.float8_e4m3fn)} uses on the CPU and on CUDA: it does not saturate. A magnitude up to 464 (the
 * midpoint between 448 and the next step, 480, which the format lacks) rounds to 448; above it, and for ±infinity and
 * NaN, the result is NaN with the input's sign (0x7F or 0xFF).
 */
public final class Fp8E4m3 {
    /** The largest finite value. */
    public static final float MAX = 448f;
    /** The positive NaN code (0xFF is the negative one). */
    public static final byte NAN = 0x7F;

    /** fp32 bits of 480 (1.875 · 2⁸): from there on, after rounding, the code would be 0x7F, which is NaN. */
    private static final int FIRST_NAN_BITS = 0x43F0_0000;
    /** fp32 bits of 2⁻⁶, the smallest normal fp8 value. */
    private static final int MIN_NORMAL_BITS = 0x3C80_0000;
    /** Exponent bias difference between fp32 (127) and fp8 (7). */
    private static final int REBIAS = 127 - 7;

    /** Every code's value ({@link #decode}). */
    private static final float[] VALUES = new float[256];

    static {
        for (int code = 0; code < 256; code++) {
            VALUES[code] = value(code);
        }
    }

    private Fp8E4m3() {
    }

    /** The value of {@code code} by the definition (NaN for 0x7F and 0xFF). */
    private static float value(int code) {
        int exponent = (code >>> 3) & 0xF;
        int mantissa = code & 0x7;
        if (exponent == 0xF && mantissa == 0x7) {
            return Float.intBitsToFloat((code & 0x80) << 24 | 0x7FC0_0000); // a quiet NaN with the code's sign
        }
        float magnitude;
        if (exponent == 0) {
            magnitude = Math.scalb((float) mantissa, -9);
        } else {
            magnitude = Math.scalb(1f + mantissa / 8f, exponent - 7);
        }
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    /** The fp32 value of an fp8 code (exact; NaN for 0x7F and 0xFF). */
    public static float decode(byte code) {
        return VALUES[code & 0xFF];
    }

    /** The fp8 code nearest to {@code f} (ties to even; NaN above 464 in magnitude, see the class comment). */
    public static byte encode(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 24) & 0x80;
        int magnitude = bits & 0x7FFF_FFFF;
        if (magnitude >= FIRST_NAN_BITS) {                       // also ±infinity and NaN
            return (byte) (sign | NAN);
        }
        if (magnitude < MIN_NORMAL_BITS) {
            // subnormal (or zero): the count of 2⁻⁹ steps, rounded half to even; 8 steps is the smallest normal, 0x08
            float steps = Float.intBitsToFloat(magnitude) * 512f; // exact: a power-of-two scaling below 8
            return (byte) (sign | (int) Math.rint(steps));
        }
        // normal: keep 3 of the 23 mantissa bits, rounding the 20 dropped ones half to even; a carry moves into the
        // exponent as it should (and 464 < |f| < 480 carries into 0x7F, NaN, as c10 does)
        int rounded = magnitude + 0x7FFFF + ((magnitude >>> 20) & 1);
        return (byte) (sign | ((rounded >>> 20) - (REBIAS << 3)));
    }

    /** {@code f} rounded to the nearest fp8 value ({@code decode(encode(f))}). */
    public static float round(float f) {
        return decode(encode(f));
    }

    /** {@code out[outOff + i] = encode(v[off + i])} for {@code i < n}. */
    public static void encode(float[] v, int off, int n, byte[] out, int outOff) {
        for (int i = 0; i < n; i++) {
            out[outOff + i] = encode(v[off + i]);
        }
    }

    /** {@code out[off + i] = decode(codes[codesOff + i])} for {@code i < n}. */
    public static void decode(byte[] codes, int codesOff, int n, float[] out, int off) {
        for (int i = 0; i < n; i++) {
            out[off + i] = VALUES[codes[codesOff + i] & 0xFF];
        }
    }
}
