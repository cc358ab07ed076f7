package tenmin.engine.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.backend.cpu.CpuBackend;

/** The op trace reaches the given reporter with backend, op, shapes, dtypes and time; level 2 adds memory. */
class TraceTest {
    /** Collects log lines. */
    private static final class Lines implements Reporter {
        final List<String> lines = new ArrayList<>();

        @Override
        public void log(Level level, String line) {
            lines.add(line);
        }

        @Override
        public boolean enabled(Level level) {
            return true;
        }

        @Override
        public Progress progress(String label, long total) {
            return SILENT.progress(label, total);
        }
    }

    @Test
    void levelOnePrintsEveryOpWithShapesDtypesAndTime() {
        Lines out = new Lines();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend be = Trace.of(1, out).wrap(cpu);
            try (Scope s = Scope.root(be, "step")) {
                Tensor x = s.full(Shape.of(2, 3), DType.F32, 1).named("x");
                Tensor w = s.full(Shape.of(4, 3), DType.BF16, 1);
                be.linear(s, x, be.cast(s, w, DType.F32), null);
            }
        }
        String linear = out.lines.stream().filter(l -> l.contains(" linear(")).findFirst().orElseThrow();
        assertTrue(linear.startsWith("trace cpu linear('x' (2, 3) f32, (4, 3) f32, null) -> (2, 4) f32 "), linear);
        assertTrue(linear.endsWith(" ms"), linear);
        assertTrue(out.lines.stream().anyMatch(l -> l.contains("cast((4, 3) bf16, f32) -> (4, 3) f32")), out.lines.toString());
        assertTrue(out.lines.stream().noneMatch(l -> l.startsWith("trace alloc")));
    }

    @Test
    void levelTwoAddsAllocationsFreesAndWhereATensorWasClosed() {
        Lines out = new Lines();
        try (CpuBackend cpu = new CpuBackend(1)) {
            Backend be = Trace.of(2, out).wrap(cpu);
            Tensor t;
            try (Scope s = Scope.root(be, "step")) {
                t = s.zeros(Shape.of(5), DType.F32).named("h");
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, t::toHost);
            assertTrue(e.getCause() != null && e.getCause().getMessage().equals("closed here"));
        }
        assertTrue(out.lines.contains("trace alloc 'h' (5) f32 in step") || out.lines.contains("trace alloc (5) f32 in step"),
                out.lines.toString());
        assertTrue(out.lines.contains("trace free  'h' (5) f32 from step"), out.lines.toString());
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
