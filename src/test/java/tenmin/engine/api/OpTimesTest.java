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
 * what a GPU's events give on a card); each interval between marks goes to the op that ended it (a scripted clock).
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

    /** A clock that reads a time the test moves: each op of the scripted backend advances it by its cost. */
    private static final class ScriptedClock implements DeviceClock {
        double now;
        private final java.util.List<Double> at = new java.util.ArrayList<>();

        @Override
        public void mark() {
            at.add(now);
        }

        @Override
        public int marks() {
            return at.size();
        }

        @Override
        public double[] intervalsMillis() {
            double[] out = new double[Math.max(0, at.size() - 1)];
            for (int i = 0; i < out.length; i++) {
                out[i] = at.get(i + 1) - at.get(i);
            }
            return out;
        }

        @Override
        public void reset() {
            at.clear();
        }

        @Override
        public void close() {
        }
    }

    @Test
    void eachIntervalGoesToTheOpThatEndedIt() {
        Map<String, Double> cost = Map.of("matmul", 5.0, "silu", 0.25, "add", 1.0);
        ScriptedClock clock = new ScriptedClock();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend scripted = (Backend) java.lang.reflect.Proxy.newProxyInstance(Backend.class.getClassLoader(),
                    new Class<?>[] {Backend.class}, (proxy, method, args) -> {
                        if (method.getName().equals("deviceClock")) {
                            return clock;
                        }
                        Object r = BackendProxies.forward(cpu, method, args);
                        clock.now += cost.getOrDefault(method.getName(), 0.0);
                        return r;
                    });
            try (OpTimes times = new OpTimes(scripted); Scope s = Scope.root(times.wrap(scripted), "ops")) {
                Backend timed = s.backend();
                Tensor a = s.full(Shape.of(4, 4), DType.F32, 0.5);
                clock.now += 100;                                  // before start: in no interval
                times.start("forward");
                Tensor c = timed.matmul(s, a, a, false, false);
                timed.silu(s, c);
                timed.silu(s, c);
                times.phase("backward");
                timed.add(s, c, a, 1.0);
                timed.matmul(s, c, a, false, false);
                OpTimes.Table t = times.stop();
                Map<String, Double> device = t.rows().stream()
                        .collect(Collectors.toMap(r -> r.phase() + " " + r.op(), OpTimes.Row::deviceMillis));
                assertEquals(Map.of("forward matmul", 5.0, "forward silu", 0.5, "backward add", 1.0, "backward matmul", 5.0),
                        device);
                assertEquals("forward matmul", t.rows().getFirst().phase() + " " + t.rows().getFirst().op(),
                        "rows by device time (ties in first-seen order)");
                assertEquals(11.5, t.deviceMillis(), 1e-12);
                assertEquals(5.5, t.phaseTotals().get("forward")[1], 1e-12);
                assertEquals(6.0, t.phaseTotals().get("backward")[1], 1e-12);
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
