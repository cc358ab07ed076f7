package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;

/**
 * libtorch's own float8 e4m3fn conversion ({@code _to_copy} to {@code torch.float8_e4m3fn}, c10's
 * {@code fp8e4m3fn_from_fp32_value}) on the CPU libtorch against tenmin's codec, value for value: every midpoint
 * between neighbouring fp8 values and its two neighbours, random values over the whole range, the values past the
 * largest one and the non-finite ones. Also from bf16 and fp16, back to every floating dtype, uploaded codes and a
 * row block: what the trainer does with fp8 weights on this backend.
 */
@Tag("torch")
class TorchFp8Test {
    private static TorchBackend be;

    @BeforeAll
    static void load() {
        be = new TorchBackend(TorchTesting.libTorchOrSkip(), Device.CPU);
    }

    @AfterAll
    static void unload() {
        if (be != null) {
            be.close();
        }
    }

    /** Midpoints, their neighbours, random values of every magnitude, extremes; both signs. */
    private static float[] values() {
        List<Float> v = new ArrayList<>();
        for (int code = 0; code < 0x7E; code++) {
            float mid = (Fp8E4m3.decode((byte) code) + Fp8E4m3.decode((byte) (code + 1))) / 2;
            for (float f : new float[] {mid, Math.nextUp(mid), Math.nextDown(mid), Fp8E4m3.decode((byte) code)}) {
                v.add(f);
                v.add(-f);
            }
        }
        for (float f : new float[] {448f, 460f, 464f, Math.nextUp(464f), 470f, 479.9f, 480f, 1e6f, Float.MAX_VALUE,
                Float.POSITIVE_INFINITY, Float.NaN, 0x1p-10f, Math.nextUp(0x1p-10f), 1e-40f, 0f}) {
            v.add(f);
            v.add(-f);
        }
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 50_000; i++) {
            v.add((float) ((r.nextBoolean() ? 1 : -1) * Math.scalb(1 + r.nextDouble(), r.nextInt(-14, 10))));
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    /** The same fp8 values: equal bits, or both NaN with the same sign (0x7F or 0xFF). */
    private static void assertSameFp8(float[] want, float[] got, String what) {
        assertSameFp8(want, got, what, true);
    }

    /**
     * As {@link #assertSameFp8(float[], float[], String)}, the NaNs' signs compared only when {@code nanSign} is set
     * (c10 turns every NaN into a positive one when it rounds to bf16 or fp16 first; the JDK and tenmin keep the sign).
     */
    private static void assertSameFp8(float[] want, float[] got, String what, boolean nanSign) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i])) {
                assertTrue(Float.isNaN(got[i]), what + " [" + i + "]: NaN expected, got " + got[i]);
                assertTrue(!nanSign || (Float.floatToRawIntBits(want[i]) < 0) == (Float.floatToRawIntBits(got[i]) < 0),
                        what + " [" + i + "]: the NaN's sign");
            } else {
                assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), what + " [" + i + "]");
            }
        }
    }

    private static float[] rounded(float[] v, DType via) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = Fp8E4m3.round(via == DType.F32 ? v[i] : Half.roundTo(v[i], via.stDType()));
        }
        return out;
    }

    @Test
    void libtorchRoundsToFp8AsTheCodecDoes() {
        float[] v = values();
        Shape shape = Shape.of(v.length);
        try (Scope s = Scope.root(be, "fp8")) {
            long before = be.liveBytes();
            Tensor f8 = be.cast(s, s.fromHost(v, shape, DType.F32), DType.F8_E4M3);
            assertEquals(DType.F8_E4M3, f8.dtype());
            assertEquals(v.length, be.liveBytes() - before - 4L * v.length, "one byte a value (beside the fp32 input)");
            float[] want = rounded(v, DType.F32);
            assertSameFp8(want, be.toHost(f8), "f32 -> f8 on the device");
            assertSameFp8(want, be.toHost(s.fromHost(v, shape, DType.F8_E4M3)), "uploaded as f8");
            for (DType wide : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                assertSameFp8(want, be.toHost(be.cast(s, f8, wide)), "f8 -> " + wide + " (exact)", wide == DType.F32);
            }
            for (DType narrow : new DType[] {DType.BF16, DType.F16}) {
                Tensor from = s.fromHost(v, shape, narrow);
                assertSameFp8(rounded(v, narrow), be.toHost(be.cast(s, from, DType.F8_E4M3)), narrow + " -> f8", false);
            }
            byte[] codes = new byte[v.length];
            Fp8E4m3.encode(v, 0, v.length, codes, 0);
            Tensor uploaded = be.fromHostBytes(s, MemorySegment.ofArray(codes), shape, DType.F8_E4M3);
            assertSameFp8(want, be.toHost(uploaded), "codes uploaded");
        }
    }

    @Test
    void rowBlocksAreCopiedAndOpsRefuseFp8() {
        float[] v = new float[6 * 4];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i - 12) * 0.3f;
        }
        try (Scope s = Scope.root(be, "rows")) {
            Tensor fused = s.fromHost(v, Shape.of(6, 4), DType.F8_E4M3);
            Tensor rows = be.narrow(s, fused, 0, 2, 2);
            assertEquals(DType.F8_E4M3, rows.dtype());
            float[] want = java.util.Arrays.copyOfRange(rounded(v, DType.F32), 8, 16);
            assertSameFp8(want, be.toHost(rows), "rows 2-3");
            Tensor x = s.fromHost(new float[] {1, 2, 3, 4}, Shape.of(1, 4), DType.F32);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.linear(s, x, fused, null));
            assertTrue(e.getMessage().startsWith("linear: ") && e.getMessage().contains("f8_e4m3"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> be.add(s, fused, fused, 1));
        }
    }
}
