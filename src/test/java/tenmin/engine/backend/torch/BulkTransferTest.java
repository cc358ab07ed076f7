package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.testing.TorchBackendTests;

/**
 * {@link Backend#toHostAll} / {@link Backend#copyFromHostAll} (the optimizer step's packed transfers) and
 * {@link Backend#toHostLater} (the saves') against the
 * one-tensor {@code toHost} / {@code fromHost}, on the torch backend (its packed override) and the cpu backend (the
 * interface's per-tensor default): same values, every tensor in its place, dtype rounding as one by one.
 */
@Tag("torch")
class BulkTransferTest extends TorchBackendTests {

    private static final Shape[] SHAPES = {Shape.of(3, 4), Shape.of(1), Shape.of(2, 3, 1, 1), Shape.of(5), Shape.of(7, 2)};
    private static final DType[] DTYPES = {DType.F32, DType.BF16, DType.F32, DType.F16, DType.F32};

    private static void roundTrip(Backend be) {
        try (Scope s = Scope.root(be, "bulk")) {
            Generator gen = new Generator(11);
            List<Tensor> ts = new ArrayList<>();
            for (int i = 0; i < SHAPES.length; i++) {
                ts.add(s.randn(SHAPES[i], DTYPES[i], gen));
            }
            List<float[]> got = new ArrayList<>();
            for (Tensor t : ts) {
                float[] a = new float[(int) t.numel() + 3];       // longer than needed: the tail stays untouched
                Arrays.fill(a, 42f);
                got.add(a);
            }
            be.toHostAll(ts, got);
            for (int i = 0; i < ts.size(); i++) {
                float[] one = ts.get(i).toHost();
                assertArrayEquals(one, Arrays.copyOf(got.get(i), one.length), "tensor " + i);
                assertEquals(42f, got.get(i)[one.length], "tail of array " + i);
            }

            // new values up: each tensor gets its own array, rounded to its dtype as fromHost rounds
            List<float[]> values = new ArrayList<>();
            for (int i = 0; i < ts.size(); i++) {
                float[] v = new float[(int) ts.get(i).numel()];
                for (int j = 0; j < v.length; j++) {
                    v[j] = 0.1f * (i + 1) + 1.0009f * j;
                }
                values.add(v);
            }
            be.copyFromHostAll(ts, values);
            for (int i = 0; i < ts.size(); i++) {
                float[] expected = s.fromHost(values.get(i), ts.get(i).shape(), ts.get(i).dtype()).toHost();
                assertArrayEquals(expected, ts.get(i).toHost(), "uploaded tensor " + i);
            }
        }
    }

    @Test
    void torchPacksAndUnpacksLikeOneByOne() {
        roundTrip(torch);
    }

    @Test
    void cpuBackendDefaultDoesTheSame() {
        try (CpuBackend cpu = new CpuBackend()) {
            roundTrip(cpu);
        }
    }

    /**
     * {@link Backend#toHostLater}: the values the tensors held at the call, whatever ops change them before the
     * completion runs on another thread; the completion runs once (a second call leaves the arrays alone).
     */
    private static void later(Backend be) throws Exception {
        try (Scope s = Scope.root(be, "later")) {
            Generator gen = new Generator(12);
            List<Tensor> ts = new ArrayList<>();
            for (int i = 0; i < SHAPES.length; i++) {
                ts.add(s.randn(SHAPES[i], DTYPES[i], gen));
            }
            List<float[]> before = new ArrayList<>();
            List<float[]> got = new ArrayList<>();
            List<float[]> changed = new ArrayList<>();
            for (Tensor t : ts) {
                before.add(t.toHost());
                got.add(new float[(int) t.numel()]);
                float[] c = new float[(int) t.numel()];
                Arrays.fill(c, -3f);
                changed.add(c);
            }
            Runnable ready = be.toHostLater(ts, got);
            be.copyFromHostAll(ts, changed);                       // the next optimizer step, before the download
            Thread writer = new Thread(ready, "writer");
            writer.start();
            writer.join();
            for (int i = 0; i < ts.size(); i++) {
                assertArrayEquals(before.get(i), got.get(i), "tensor " + i + " as it was at the call");
                assertEquals(-3f, ts.get(i).toHost()[0], "tensor " + i + " changed after the call");
            }
            Arrays.fill(got.getFirst(), 7f);
            ready.run();
            assertEquals(7f, got.getFirst()[0], "a second run does nothing");
        }
    }

    @Test
    void torchDownloadsLaterWhatTheTensorsHeldAtTheCall() throws Exception {
        later(torch);
        later(torch); // the kept staging buffer, reused
    }

    @Test
    void cpuBackendDownloadsAtOnce() throws Exception {
        try (CpuBackend cpu = new CpuBackend()) {
            later(cpu);
        }
    }

    @Test
    void mismatchedArgumentsAreRefusedBeforeAnyTransfer() {
        try (Scope s = Scope.root(torch, "bulk")) {
            Tensor t = s.full(Shape.of(4), DType.F32, 1);
            assertThrows(IllegalArgumentException.class, () -> torch.toHostAll(List.of(t), List.of()));
            assertThrows(IllegalArgumentException.class, () -> torch.toHostAll(List.of(t), List.of(new float[3])));
            assertThrows(IllegalArgumentException.class, () -> torch.toHostLater(List.of(t), List.of(new float[3])));
            assertThrows(IllegalArgumentException.class, () -> torch.copyFromHostAll(List.of(t), List.of(new float[2])));
            Tensor ids = s.fromHost(new long[] {1, 2}, 2);
            assertThrows(IllegalArgumentException.class, () -> torch.toHostAll(List.of(ids), List.of(new float[2])));
        }
    }
}
