package tenmin.engine.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchTesting;

/**
 * {@link OpTimes}: every op of the timed stretch is in the table once, in its phase, with its host and device
 * time; outside the stretch nothing is recorded; the device times add up to the stretch's (on the wall clock here:
 * what a GPU's events give on a card) and a large product outweighs the cheap ops around it.
 */
class OpTimesTest {
    private static void timesOps(Backend real) {
        try (OpTimes times = new OpTimes(real)) {
            Backend timed = times.wrap(real);
            try (Scope s = Scope.root(timed, "ops")) {
                Generator gen = new Generator(3);
                Tensor a = s.randn(Shape.of(384, 384), DType.F32, gen);      // before start: not timed
                Tensor b = s.randn(Shape.of(384, 384), DType.F32, gen);
                long t0 = System.nanoTime();
                times.start("forward");
                Tensor c = timed.matmul(s, a, b, false, false);
                Tensor d = timed.silu(s, c);
                times.phase("backward");
                Tensor e = timed.add(s, d, c, 1.0);
                timed.silu(s, e);
                OpTimes.Table t = times.stop();
                double wall = (System.nanoTime() - t0) / 1e6;
                Map<String, OpTimes.Row> rows = t.rows().stream()
                        .collect(Collectors.toMap(r -> r.phase() + " " + r.op(), Function.identity()));
                assertEquals(Map.of("forward matmul", 1L, "forward silu", 1L, "backward add", 1L, "backward silu", 1L),
                        rows.values().stream().collect(Collectors.toMap(r -> r.phase() + " " + r.op(), OpTimes.Row::calls)),
                        "one row per phase and op: " + t.rows());
                assertEquals(2L, t.phaseCalls().get("forward"));
                assertEquals(2L, t.phaseCalls().get("backward"));
                double device = t.deviceMillis();
                assertTrue(device > 0 && device <= wall, device + " ms of device time in a stretch of " + wall + " ms");
                double sum = t.rows().stream().mapToDouble(OpTimes.Row::deviceMillis).sum();
                assertEquals(device, sum, 1e-9, "phase totals = rows");
                assertTrue(rows.get("forward matmul").deviceMillis() > rows.get("backward add").deviceMillis(),
                        "a 384^3 product takes longer than an addition of its result: " + t.rows());
                for (OpTimes.Row r : t.rows()) {
                    assertTrue(r.hostMillis() >= 0 && r.hostMillis() <= wall, r.toString());
                }
                assertTrue(String.join("\n", t.lines(10)).contains("| forward | matmul | 1 |"), t.lines(10).toString());

                timed.silu(s, a);                                               // after stop: nothing more is recorded
                times.start("again");
                OpTimes.Table empty = times.stop();
                assertTrue(empty.rows().isEmpty(), empty.rows().toString());
            }
        }
    }

    @Test
    void cpuBackend() {
        try (CpuBackend cpu = new CpuBackend(2)) {
            timesOps(cpu);
        }
    }

    /** libtorch on the CPU: the torch backend's clock is the wall clock there (CUDA events on a GPU). */
    @Test
    @Tag("torch")
    void torchBackend() {
        try (Backend torch = new TorchBackend(TorchTesting.libTorchOrSkip(), Device.CPU)) {
            timesOps(torch);
        }
    }
}
