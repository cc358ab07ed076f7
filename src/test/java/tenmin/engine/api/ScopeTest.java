package tenmin.engine.api;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.backend.cpu.CpuBackend;

/** Scope and tensor lifetimes: live counts, nesting, keep, sealing, use after close. */
class ScopeTest {
    private final CpuBackend backend = new CpuBackend(1);

    @AfterEach
    void close() {
        backend.close();
    }

    @Test
    void liveCountsReturnToZeroWhenScopesClose() {
        Scope process = Scope.root(backend, "process");
        Scope model = process.child("model");
        model.zeros(Shape.of(4, 4), DType.F32);
        Scope step = model.child("step");
        step.zeros(Shape.of(8), DType.BF16);
        Tensor x = step.full(Shape.of(2, 3), DType.F32, 1.5);
        backend.reshape(step, x, Shape.of(6));
        assertEquals(4, backend.liveTensors());
        assertEquals(4 * 16 + 2 * 8 + 4 * 6, backend.liveBytes(), "views do not count towards live bytes");
        assertEquals(4, model.liveTensors(), "counts include open children");
        step.close();
        assertEquals(1, backend.liveTensors());
        process.close();
        assertEquals(0, backend.liveTensors());
        assertEquals(0, backend.liveBytes());
    }

    @Test
    void aViewKeepsItsStorageCountedAfterItsBaseClosesAndThePeakIsTheHighWaterMark() {
        Scope s = Scope.root(backend, "s");
        backend.resetPeakLiveBytes();
        Tensor base = s.zeros(Shape.of(4, 4), DType.F32);                 // 64 bytes
        Tensor view = backend.reshape(s, base, Shape.of(16));
        base.close();
        assertEquals(64, backend.liveBytes(), "the view still holds the storage");
        Tensor other = s.zeros(Shape.of(8), DType.F32);                   // 32 bytes
        assertEquals(96, backend.peakLiveBytes());
        view.close();
        other.close();
        assertEquals(0, backend.liveBytes());
        assertEquals(96, backend.peakLiveBytes(), "the peak stays until reset");
        backend.resetPeakLiveBytes();
        assertEquals(0, backend.peakLiveBytes());
        s.close();
    }

    @Test
    void closeIsIdempotentForScopesAndTensors() {
        Scope s = Scope.root(backend, "s");
        Tensor t = s.zeros(Shape.of(3), DType.F32);
        t.close();
        t.close();
        assertEquals(0, s.liveTensors());
        s.close();
        assertDoesNotThrow(s::close);
        assertEquals(0, backend.liveTensors());
    }

    @Test
    void useAfterCloseNamesTheTensorAndItsShape() {
        Tensor t;
        try (Scope step = Scope.root(backend, "step")) {
            t = step.zeros(Shape.of(2, 4, 16, 16), DType.F32).named("unet.h");
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, t::toHost);
        assertTrue(e.getMessage().contains("'unet.h'"), e.getMessage());
        assertTrue(e.getMessage().contains("(2, 4, 16, 16)"), e.getMessage());
        assertTrue(e.getMessage().contains("scope 'step'"), e.getMessage());
        try (Scope other = Scope.root(backend, "other")) {
            assertThrows(IllegalStateException.class, () -> backend.add(other, t, t, 1.0));
        }
    }

    @Test
    void keepMovesATensorToTheParent() {
        try (Scope model = Scope.root(backend, "model")) {
            Tensor kept;
            try (Scope step = model.child("step")) {
                step.zeros(Shape.of(5), DType.F32);
                kept = step.keep(step.full(Shape.of(2), DType.F32, 3));
                assertSame(model, kept.scope());
            }
            assertFalse(kept.isClosed());
            assertEquals(1, backend.liveTensors());
            assertEquals(3f, kept.toHost()[1]);
        }
        assertEquals(0, backend.liveTensors());
    }

    @Test
    void keepRefusesTensorsOfOtherScopes() {
        try (Scope a = Scope.root(backend, "a"); Scope b = a.child("b")) {
            Tensor t = a.zeros(Shape.of(1), DType.F32);
            assertThrows(IllegalStateException.class, () -> b.keep(t));
            assertThrows(IllegalStateException.class, () -> a.keep(t), "a root has no parent");
        }
    }

    @Test
    void parentClosesOpenChildren() {
        Scope root = Scope.root(backend, "root");
        Scope child = root.child("child");
        Scope grandchild = child.child("grandchild");
        grandchild.zeros(Shape.of(3), DType.F32);
        root.close();
        assertTrue(child.isClosed());
        assertTrue(grandchild.isClosed());
        assertEquals(0, backend.liveTensors());
        assertThrows(IllegalStateException.class, () -> child.zeros(Shape.of(1), DType.F32));
    }

    @Test
    void sealedScopeRefusesAllocationsAndKeeps() {
        try (Scope model = Scope.root(backend, "model")) {
            model.seal();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> model.zeros(Shape.of(7), DType.F32));
            assertTrue(e.getMessage().contains("sealed"), e.getMessage());
            try (Scope step = model.child("step")) {
                Tensor t = step.zeros(Shape.of(1), DType.F32);
                assertThrows(IllegalStateException.class, () -> step.keep(t));
            }
            model.unseal();
            model.zeros(Shape.of(7), DType.F32);
        }
        assertEquals(0, backend.liveTensors());
    }

    @Test
    void gradientsLiveAndMoveWithTheirTensor() {
        try (Scope model = Scope.root(backend, "model")) {
            Tensor p;
            try (Scope step = model.child("step")) {
                p = step.zeros(Shape.of(3), DType.F32).named("lora.up").requireGrad();
                assertEquals("lora.up.grad", p.grad().name());
                assertEquals(2, step.liveTensors());
                step.keep(p);
            }
            assertFalse(p.grad().isClosed());
            p.close();
            assertTrue(p.grad().isClosed());
            assertEquals(0, backend.liveTensors());
        }
    }

    @Test
    void scopePathsNameEveryLevel() {
        try (Scope a = Scope.root(backend, "process"); Scope b = a.child("model"); Scope c = b.child("step")) {
            assertEquals("process/model/step", c.path());
        }
    }
}
