package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * float8 e4m3fn against the format's definition, computed here in double: sign, 4 exponent bits with bias 7 (field 0:
 * subnormals m/8 · 2⁻⁶), 3 mantissa bits, 0x7F and 0xFF NaN, no infinities. Encoding is checked exhaustively at every
 * midpoint between neighbouring values (ties to the even code), on both sides of each, against a brute-force nearest
 * search over random fp32 values, and beyond the largest value (c10's rule: up to 464 rounds to 448, above it NaN).
 */
class Fp8E4m3Test {
    @TempDir
    Path tmp;

    /** The value of a code by the definition; NaN for the two NaN codes. */
    private static double defined(int code) {
        int sign = code >>> 7;
        int e = (code >>> 3) & 0xF;
        int m = code & 7;
        if (e == 15 && m == 7) {
            return Double.NaN;
        }
        double magnitude = e == 0 ? (m / 8.0) * Math.pow(2, 1 - 7) : (1 + m / 8.0) * Math.pow(2, e - 7);
        return sign == 1 ? -magnitude : magnitude;
    }

    /** The non-negative finite codes in increasing value: 0x00 .. 0x7E. */
    private static int[] positiveCodes() {
        int[] codes = new int[0x7F];
        for (int c = 0; c < 0x7F; c++) {
            codes[c] = c;
        }
        return codes;
    }

    /** c10's rule by brute force: the nearest finite value (ties to the even code); NaN beyond 464 and for ±inf/NaN. */
    private static int nearest(float f) {
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
        double a = Math.abs((double) f);
        if (Double.isNaN(a) || a > 464) {
            return sign | 0x7F;
        }
        int best = 0;
        double bestDistance = Double.POSITIVE_INFINITY;
        for (int c : positiveCodes()) {
            double d = Math.abs(a - defined(c));
            if (d < bestDistance || (d == bestDistance && (c & 1) == 0)) {
                best = c;
                bestDistance = d;
            }
        }
        return sign | best;
    }

    @Test
    void everyCodeDecodesToTheValueOfTheDefinition() {
        int nans = 0;
        for (int code = 0; code < 256; code++) {
            float got = Fp8E4m3.decode((byte) code);
            double want = defined(code);
            if (Double.isNaN(want)) {
                nans++;
                assertTrue(Float.isNaN(got), "code " + code);
                assertEquals(code >= 0x80, Float.floatToRawIntBits(got) < 0, "the NaN's sign, code " + code);
            } else {
                assertEquals(Float.floatToIntBits((float) want), Float.floatToIntBits(got), "code " + code); // -0 too
                assertEquals(want, got, 0.0, "code " + code + " is exact in fp32");
                assertTrue(Float.isFinite(got), "no infinities");
            }
        }
        assertEquals(2, nans);
        assertEquals(448f, Fp8E4m3.decode((byte) 0x7E));
        assertEquals(-448f, Fp8E4m3.decode((byte) 0xFE));
        assertEquals(0x1p-9f, Fp8E4m3.decode((byte) 0x01), "smallest subnormal");
        assertEquals(0x1p-6f, Fp8E4m3.decode((byte) 0x08), "smallest normal");
        assertEquals(1f, Fp8E4m3.decode((byte) 0x38));
    }

    @Test
    void everyFiniteValueEncodesToItsCode() {
        for (int code = 0; code < 256; code++) {
            if ((code & 0x7F) != 0x7F) {
                assertEquals((byte) code, Fp8E4m3.encode((float) defined(code)), "code " + code);
            }
        }
        assertEquals((byte) 0x80, Fp8E4m3.encode(-0f));
    }

    @Test
    void midpointsRoundToTheEvenCodeAndTheirNeighboursToTheNearer() {
        int[] codes = positiveCodes();
        int checked = 0;
        for (int i = 0; i + 1 < codes.length; i++) {
            int lo = codes[i];
            int hi = codes[i + 1];
            float mid = (float) ((defined(lo) + defined(hi)) / 2);      // exact: 5 significant bits at most
            assertEquals((defined(lo) + defined(hi)) / 2, mid, 0.0);
            int even = (lo & 1) == 0 ? lo : hi;
            for (int sign : new int[] {0, 0x80}) {
                float m = sign == 0 ? mid : -mid;
                assertEquals((byte) (sign | even), Fp8E4m3.encode(m), "midpoint " + m);
                float above = sign == 0 ? Math.nextUp(mid) : -Math.nextUp(mid);
                float below = sign == 0 ? Math.nextDown(mid) : -Math.nextDown(mid);
                assertEquals((byte) (sign | hi), Fp8E4m3.encode(above), "just above " + m);
                assertEquals((byte) (sign | lo), Fp8E4m3.encode(below), "just below " + m);
                checked++;
            }
        }
        assertEquals(2 * 126, checked);
        assertEquals((byte) 0x00, Fp8E4m3.encode(0x1p-10f), "half the smallest subnormal: to even, zero");
        assertEquals((byte) 0x02, Fp8E4m3.encode(0x1p-9f * 1.5f), "1.5 steps: to even, 2");
        assertEquals((byte) 0x08, Fp8E4m3.encode(0x1p-6f - 0x1p-10f), "between the largest subnormal and 2^-6: even");
    }

    @Test
    void beyondTheLargestValueFollowsC10RoundingOrNaN() {
        for (float f : new float[] {448f, Math.nextUp(448f), 460f, 464f}) {
            assertEquals((byte) 0x7E, Fp8E4m3.encode(f), "" + f);
            assertEquals((byte) 0xFE, Fp8E4m3.encode(-f), "" + -f);
        }
        for (float f : new float[] {Math.nextUp(464f), 470f, Math.nextDown(480f), 480f, 1e6f, Float.MAX_VALUE,
                Float.POSITIVE_INFINITY, Float.NaN}) {
            assertEquals((byte) 0x7F, Fp8E4m3.encode(f), "" + f);
            assertEquals((byte) 0xFF, Fp8E4m3.encode(-f), "" + -f);
            assertTrue(Float.isNaN(Fp8E4m3.round(f)));
        }
    }

    @Test
    void randomValuesEncodeToTheNearestCode() {
        SplittableRandom r = new SplittableRandom(11);
        List<Float> values = new ArrayList<>();
        for (int i = 0; i < 100_000; i++) {
            // magnitudes 2^-14 .. 2^10 (subnormals, normals, beyond the largest), both signs, any mantissa
            values.add((float) ((r.nextBoolean() ? 1 : -1) * Math.scalb(1 + r.nextDouble(), r.nextInt(-14, 10))));
        }
        for (int i = 0; i < 20_000; i++) {
            values.add(Float.intBitsToFloat(r.nextInt()));                  // any fp32, tiny and huge
        }
        for (float f : values) {
            assertEquals((byte) nearest(f), Fp8E4m3.encode(f), () -> "value " + f);
        }
    }

    @Test
    void arraysAndHalfRoundingAgreeWithTheScalarForms() {
        float[] v = {0.1f, -3.3f, 500f, 1e-4f, -0f};
        byte[] codes = new byte[v.length];
        Fp8E4m3.encode(v, 0, v.length, codes, 0);
        float[] back = new float[v.length];
        Fp8E4m3.decode(codes, 0, v.length, back, 0);
        for (int i = 0; i < v.length; i++) {
            assertEquals(Fp8E4m3.encode(v[i]), codes[i]);
            assertEquals(Float.floatToIntBits(Fp8E4m3.round(v[i])), Float.floatToIntBits(back[i]));
            assertEquals(Float.floatToIntBits(Fp8E4m3.round(v[i])),
                    Float.floatToIntBits(Half.roundTo(v[i], StDType.F8_E4M3)));
        }
        assertEquals(0.1015625f, Fp8E4m3.round(0.1f));               // 1.625 · 2^-4
        assertEquals(-3.25f, Fp8E4m3.round(-3.3f));
    }

    /** An F8_E4M3 safetensors tensor (fp8 checkpoints exist): written one byte a value, read back as its values. */
    @Test
    void safetensorsStoresAndReadsF8E4M3() throws Exception {
        float[] v = new float[256];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((i - 128) * 0.37);
        }
        Path file = tmp.resolve("fp8.safetensors");
        new SafetensorsWriter().addFloats("w", StDType.F8_E4M3, new long[] {16, 16}, v).write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(StDType.F8_E4M3, f.info("w").dtype());
            assertEquals(256, f.info("w").sizeBytes());
            float[] back = f.readFloats("w");
            for (int i = 0; i < v.length; i++) {
                assertEquals(Fp8E4m3.round(v[i]), back[i], 0.0, "value " + i);
            }
        }
        assertTrue(Files.size(file) < 256 + 200, "one byte a value plus the header");
    }
}
