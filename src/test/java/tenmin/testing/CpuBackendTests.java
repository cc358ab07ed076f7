package tenmin.testing;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import tenmin.engine.backend.cpu.CpuBackend;

/**
 * Base of test classes that run models on the {@code cpu} backend: one backend per class, using every
 * processor, closed after the class (tests assert {@code backend.liveTensors()} returns to zero).
 */
public abstract class CpuBackendTests {
    protected static CpuBackend backend;

    @BeforeAll
    static void startBackend() {
        backend = new CpuBackend();
    }

    @AfterAll
    static void stopBackend() {
        backend.close();
    }
}
