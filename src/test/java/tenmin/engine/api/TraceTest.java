package tenmin.engine.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;


import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.testing.LogLines;

/** The op trace reaches the given reporter with backend, op, shapes, dtypes and time; level 2 adds memory. */
class TraceTest {
    @Test
    void levelOnePrintsEveryOpWithShapesDtypesAndTime() {
        LogLines out = new LogLines();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend be = Trace.of(1, out).wrap(cpu);
            try (Scope s = Scope.root(be, "step")) {
                Tensor x = s.full(Shape.of(2, 3), DType.F32, 1).named("x");
                Tensor w = s.full(Shape.of(4, 3), DType.BF16, 1);
                be.linear(s, x, be.cast(s, w, DType.F32), null);
            }
        }
        String linear = out.lines().stream().filter(l -> l.contains(" linear(")).findFirst().orElseThrow();
        assertTrue(linear.startsWith("trace cpu linear('x' (2, 3) f32, (4, 3) f32, null) -> (2, 4) f32 "), linear);
        assertTrue(linear.endsWith(" ms"), linear);
        assertTrue(out.lines().stream().anyMatch(l -> l.contains("cast((4, 3) bf16, f32) -> (4, 3) f32")), out.lines().toString());
        assertTrue(out.lines().stream().noneMatch(l -> l.startsWith("trace alloc")));
    }

    /** Calls with lists of tensors first (a backward's gradient sums, bulk transfers) are ops; long lists are cut. */
    @Test
    void listCallsAreTracedWithTheirFirstTensors() {
        LogLines out = new LogLines();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend be = Trace.of(1, out).wrap(cpu);
            try (Scope s = Scope.root(be, "step")) {
                java.util.List<Tensor> ys = new java.util.ArrayList<>();
                java.util.List<Tensor> xs = new java.util.ArrayList<>();
                for (int i = 0; i < 6; i++) {
                    ys.add(s.full(Shape.of(i + 1), DType.F32, 1));
                    xs.add(s.full(Shape.of(i + 1), DType.F32, 2));
                }
                be.axpyIntoAll(ys, xs);
                assertEquals(3f, ys.get(5).toHost()[5]);
            }
        }
        String line = out.lines().stream().filter(l -> l.contains(" axpyIntoAll(")).findFirst().orElseThrow();
        assertTrue(line.startsWith("trace cpu axpyIntoAll([(1) f32, (2) f32, (3) f32, (4) f32, ... 2 more], [(1) f32,"),
                line);
    }

    @Test
    void levelTwoAddsAllocationsFreesAndWhereATensorWasClosed() {
        LogLines out = new LogLines();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend be = Trace.of(2, out).wrap(cpu);
            Tensor t;
            try (Scope s = Scope.root(be, "step")) {
                t = s.zeros(Shape.of(5), DType.F32).named("h");
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, t::toHost);
            assertTrue(e.getCause() != null && e.getCause().getMessage().equals("closed here"));
        }
        assertTrue(out.lines().contains("trace alloc 'h' (5) f32 in step") || out.lines().contains("trace alloc (5) f32 in step"),
                out.lines().toString());
        assertTrue(out.lines().contains("trace free  'h' (5) f32 from step"), out.lines().toString());
    }

    @Test
    void environmentValuesSelectTheLevel() {
        assertSame(Trace.OFF, Trace.parse(null, Reporter.SILENT));
        assertSame(Trace.OFF, Trace.parse("0", Reporter.SILENT));
        assertEquals(2, Trace.parse("2", Reporter.SILENT).level());
        InputException e = assertThrows(InputException.class, () -> Trace.parse("yes", Reporter.SILENT));
        assertTrue(e.getMessage().contains("TENMIN_TRACE"));
        try (CpuBackend cpu = new CpuBackend(1)) {
            assertSame(cpu, Trace.OFF.wrap(cpu));
        }
    }
}
