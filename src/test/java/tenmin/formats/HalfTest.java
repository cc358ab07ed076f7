package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/** fp16/bf16 rounding is round-to-nearest-even, checked against a brute-force nearest search. */
class HalfTest {

    /** The nearest of the two bf16 neighbours by exact distance, ties to the even mantissa. */
    private static short nearestBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        short lo = (short) (bits >>> 16);
        short hi = (short) (lo + 1);
        double dLo = Math.abs((double) f - Half.bf16ToF32(lo));
        // IEEE overflow: the neighbour past the largest finite value counts as +-2^128 when measuring distance
        double hiValue = (hi & 0x7FFF) == 0x7F80 ? Math.copySign(Math.scalb(1.0, 128), f) : Half.bf16ToF32(hi);
        double dHi = Math.abs((double) f - hiValue);
        if (dLo < dHi) {
            return lo;
        }
        if (dHi < dLo) {
            return hi;
        }
        return (lo & 1) == 0 ? lo : hi;
    }

    @Test
    void bf16RoundsToNearestEven() {
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            float f = Float.intBitsToFloat(r.nextInt() & 0x7F7F_FFFF | (r.nextBoolean() ? 0x8000_0000 : 0));
            assertEquals(nearestBf16(f), Half.f32ToBf16(f), () -> "value " + f);
        }
        // exact ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 -> even (1.0)
        assertEquals(1.0f, Half.bf16ToF32(Half.f32ToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, Half.bf16ToF32(Half.f32ToBf16(1f + 0x1p-7f + 0x1p-8f)));
        assertTrue(Float.isNaN(Half.bf16ToF32(Half.f32ToBf16(Float.NaN))));
        assertEquals(Float.POSITIVE_INFINITY, Half.bf16ToF32(Half.f32ToBf16(Float.MAX_VALUE)));
    }

    @Test
    void f16RoundTripsEveryValueAndRoundsTiesToEven() {
        for (int h = 0; h < 65536; h++) {
            float f = Half.f16ToF32((short) h);
            if (!Float.isNaN(f)) {
                assertEquals((short) h, Half.f32ToF16(f), "f16 bits " + h);
            }
        }
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even); 1 + 3*2^-11 -> 1 + 2^-9
        assertEquals(1.0f, Half.f16ToF32(Half.f32ToF16(1f + 0x1p-11f)));
        assertEquals(1f + 0x1p-9f, Half.f16ToF32(Half.f32ToF16(1f + 3 * 0x1p-11f)));
        assertEquals(65504f, Half.f16ToF32(Half.f32ToF16(65519f)));
        assertEquals(Float.POSITIVE_INFINITY, Half.f16ToF32(Half.f32ToF16(65520f)));
    }
}
