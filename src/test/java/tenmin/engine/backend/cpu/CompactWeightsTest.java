package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.testing.CpuBackendTests;

/**
 * Frozen fp16/bf16 weights on the cpu backend ({@code frozenFromHostBytes}): held in 2 bytes a value, read by
 * every op as the exact fp32 values (the JDK's own conversions are the reference), never written.
 */
class CompactWeightsTest extends CpuBackendTests {
    private static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** n random 16-bit weights (normal, scale 0.05, some subnormal), their bytes and their exact fp32 values. */
    private static float[] weights(MemorySegment bytes, int n, boolean bf16, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] exact = new float[n];
        for (int i = 0; i < n; i++) {
            float x = (float) (r.nextGaussian() * (i % 97 == 0 ? 1e-6 : 0.05));
            short h = bf16 ? (short) (Float.floatToRawIntBits(x) >>> 16) : Float.floatToFloat16(x);
            bytes.set(LE, 2L * i, h);
            exact[i] = bf16 ? Float.intBitsToFloat(h << 16) : Float.float16ToFloat(h);
        }
        return exact;
    }

    @Test
    void halfTheBytesSameValuesSameProducts() {
        for (boolean bf16 : new boolean[] {false, true}) {
            int out = 48;
            int in = 80;
            try (Arena arena = Arena.ofConfined(); Scope s = Scope.root(backend, "w")) {
                MemorySegment bytes = arena.allocate(2L * out * in);
                float[] exact = weights(bytes, out * in, bf16, bf16 ? 2 : 1);
                long before = backend.liveBytes();
                Tensor w = backend.frozenFromHostBytes(s, bytes, Shape.of(out, in), bf16 ? DType.BF16 : DType.F16);
                assertEquals(DType.F32, w.dtype());
                assertEquals(2L * out * in, backend.liveBytes() - before, "2 bytes a value");
                assertArrayEquals(exact, backend.toHost(w));
                Tensor full = s.fromHost(exact, Shape.of(out, in), DType.F32);
                SplittableRandom r = new SplittableRandom(3);
                float[] xv = new float[5 * in];
                for (int i = 0; i < xv.length; i++) {
                    xv[i] = (float) r.nextGaussian();
                }
                Tensor x = s.fromHost(xv, Shape.of(5, in), DType.F32);
                // the same kernel on the same values: bit for bit
                assertArrayEquals(backend.toHost(backend.linear(s, x, full, null)),
                        backend.toHost(backend.linear(s, x, w, null)));
                Tensor view = backend.reshape(s, w, Shape.of(out * in));
                assertArrayEquals(exact, backend.toHost(view));
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.scaleInto(w, 2));
                assertTrue(e.getMessage().contains("read-only"), e.getMessage());
                assertThrows(IllegalArgumentException.class, () -> backend.copyInto(w, full));
                assertArrayEquals(exact, backend.toHost(w), "refused writes left it as it was");
            }
        }
        assertEquals(0, backend.liveBytes());
        assertEquals(0, backend.liveTensors());
    }
}
