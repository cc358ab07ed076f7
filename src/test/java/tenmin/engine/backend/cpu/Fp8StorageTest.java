package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;
import tenmin.formats.StDType;
import tenmin.testing.CpuBackendTests;

/**
 * F8_E4M3 tensors on the cpu backend: one byte a value (the compact, read-only form), made by casting, uploading
 * floats or codes, and read back through casts to every floating dtype with exactly the codec's values
 * ({@link Fp8E4m3}, itself checked against the format's definition); no op but casts, copies and row blocks takes them.
 */
class Fp8StorageTest extends CpuBackendTests {

    /** Values over fp8's whole range and beyond: subnormals, normals, midpoints, past 448, zeros, non-finite. */
    private static float[] values(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (i % 8) {
                case 0 -> (float) (r.nextGaussian() * 0.05);
                case 1 -> (float) Math.scalb(r.nextDouble(-1, 1), -8);           // subnormal range
                case 2 -> (float) (r.nextGaussian() * 300);                       // some beyond ±464: NaN
                case 3 -> Fp8E4m3.decode((byte) r.nextInt(256)) * (r.nextBoolean() ? 1.0625f : 1f); // on and between codes
                case 4 -> i % 16 == 4 ? -0f : 0f;
                case 5 -> i % 3 == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
                default -> (float) r.nextGaussian();
            };
        }
        return v;
    }

    private static void assertBits(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i])) {
                assertTrue(Float.isNaN(got[i]), what + " [" + i + "]");
            } else {
                assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), what + " [" + i + "] " + want[i]);
            }
        }
    }

    @Test
    void castsToAndFromFp8GiveTheCodecsValuesInOneByteEach() {
        float[] v = values(4096, 1);
        float[] rounded = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            rounded[i] = Fp8E4m3.round(v[i]);
        }
        try (Scope s = Scope.root(backend, "fp8")) {
            Shape shape = Shape.of(64, 64);
            Tensor f32 = s.fromHost(v, shape, DType.F32);
            long before = backend.liveBytes();
            Tensor f8 = backend.cast(s, f32, DType.F8_E4M3);
            assertEquals(DType.F8_E4M3, f8.dtype());
            assertEquals(v.length, backend.liveBytes() - before, "one byte a value");
            assertEquals(v.length, f8.sizeBytes());
            assertBits(rounded, backend.toHost(f8), "toHost");
            assertBits(rounded, backend.toHost(backend.cast(s, f8, DType.F32)), "f8 -> f32");
            for (DType wide : new DType[] {DType.BF16, DType.F16}) {
                // fp8 values are exact in bf16 and fp16: the cast to them changes nothing
                assertBits(rounded, backend.toHost(backend.cast(s, f8, wide)), "f8 -> " + wide);
                float[] viaWide = new float[v.length];
                for (int i = 0; i < v.length; i++) {
                    viaWide[i] = Fp8E4m3.round(Half.roundTo(v[i], wide.stDType()));
                }
                Tensor narrow = backend.cast(s, s.fromHost(v, shape, wide), DType.F8_E4M3);
                assertBits(viaWide, backend.toHost(narrow), wide + " -> f8");
            }
            assertBits(rounded, backend.toHost(s.fromHost(v, shape, DType.F8_E4M3)), "fromHost as f8");
            byte[] codes = new byte[v.length];
            Fp8E4m3.encode(v, 0, v.length, codes, 0);
            Tensor uploaded = backend.fromHostBytes(s, MemorySegment.ofArray(codes), shape, DType.F8_E4M3);
            assertBits(rounded, backend.toHost(uploaded), "fromHostBytes");
            assertBits(rounded, backend.toHost(backend.cast(s, f8, DType.F8_E4M3)), "f8 -> f8");
            float[] full = backend.toHost(backend.full(s, Shape.of(3), DType.F8_E4M3, 0.3));
            assertArrayEquals(new float[] {0.3125f, 0.3125f, 0.3125f}, full, "full: 0.3 rounds to 1.25 · 2^-2");
        }
        assertEquals(0, backend.liveTensors());
        assertEquals(0, backend.liveBytes());
    }

    @Test
    void rowBlocksOfFp8WeightsStayInOneByte() {
        float[] v = values(6 * 5, 2);
        try (Scope s = Scope.root(backend, "rows")) {
            Tensor fused = s.fromHost(v, Shape.of(6, 5), DType.F8_E4M3);     // (3C, C) with C = 2 rows a block
            long before = backend.liveBytes();
            Tensor k = backend.narrow(s, fused, 0, 2, 2);                    // (2, 5)
            assertEquals(DType.F8_E4M3, k.dtype());
            assertEquals(10, backend.liveBytes() - before);
            float[] all = backend.toHost(fused);
            float[] want = java.util.Arrays.copyOfRange(all, 10, 20);
            assertBits(want, backend.toHost(k), "rows 2-3");
            assertBits(all, backend.toHost(backend.reshape(s, fused, Shape.of(30))), "reshape");
            // frozen F32 weights kept as fp8 codes (an fp8 checkpoint's): one byte a value too; a row block of them is
            // an ordinary F32 tensor, as one of 16-bit frozen weights is
            byte[] codes = new byte[v.length];
            Fp8E4m3.encode(v, 0, v.length, codes, 0);
            before = backend.liveBytes();
            Tensor frozen = backend.frozenFromHostBytes(s, MemorySegment.ofArray(codes), Shape.of(6, 5), DType.F8_E4M3);
            assertEquals(DType.F32, frozen.dtype());
            assertEquals(DType.F8_E4M3, backend.frozenStorage(frozen));
            assertEquals(30, backend.liveBytes() - before);
            Tensor rows = backend.narrow(s, frozen, 0, 2, 2);
            assertEquals(DType.F32, rows.dtype());
            assertBits(all, backend.toHost(frozen), "frozen");
            assertBits(want, backend.toHost(rows), "frozen rows 2-3");
        }
    }

    @Test
    void noOpComputesInFp8AndNothingWritesIt() {
        try (Scope s = Scope.root(backend, "refused")) {
            Tensor w = s.fromHost(new float[] {1, 2, 3, 4}, Shape.of(2, 2), DType.F8_E4M3);
            Tensor x = s.fromHost(new float[] {1, 1}, Shape.of(1, 2), DType.F32);
            Tensor w8x = s.fromHost(new float[] {1, 1}, Shape.of(1, 2), DType.F8_E4M3);
            IllegalArgumentException linear = assertThrows(IllegalArgumentException.class,
                    () -> backend.linear(s, w8x, w, null));
            assertTrue(linear.getMessage().startsWith("linear: ") && linear.getMessage().contains("f8_e4m3"),
                    linear.getMessage());
            assertThrows(IllegalArgumentException.class, () -> backend.linear(s, x, w, null));
            assertThrows(IllegalArgumentException.class, () -> backend.add(s, w, w, 1));
            assertThrows(IllegalArgumentException.class, () -> backend.permute(s, w, 1, 0));
            assertThrows(IllegalArgumentException.class, () -> backend.narrow(s, w, 1, 0, 1));
            assertThrows(IllegalArgumentException.class, () -> backend.randn(s, Shape.of(2), DType.F8_E4M3,
                    new tenmin.engine.api.Generator(1)));
            IllegalArgumentException write = assertThrows(IllegalArgumentException.class, () -> backend.scaleInto(w, 2));
            assertTrue(write.getMessage().contains("read-only"), write.getMessage());
            assertThrows(IllegalArgumentException.class, () -> backend.fillInto(w, 0));
            assertThrows(IllegalArgumentException.class, w::requireGrad);
            assertArrayEquals(new float[] {1, 2, 3, 4}, backend.toHost(w), "refused writes left it as it was");
            assertEquals(StDType.F8_E4M3, DType.F8_E4M3.stDType());
            assertEquals(DType.F8_E4M3, DType.of(StDType.F8_E4M3));
            assertEquals(DType.F8_E4M3, DType.parse("float8_e4m3fn"));
        }
    }
}
