package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import tenmin.engine.api.DType;
import tenmin.engine.parity.BackendParity;

/**
 * Every cpu kernel (the whole parity suite, forward and backward) gives bit-identical results on one
 * thread and on two: work is split into pieces whose per-element summation order does not depend on the
 * thread count, which checkpointing and reproducible runs rely on.
 */
class CpuThreadParityTest {
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void oneAndTwoThreadsAgreeBitForBit(DType dtype) {
        try (CpuBackend one = new CpuBackend(1); CpuBackend two = new CpuBackend(2)) {
            List<BackendParity.Result> results = BackendParity.compare(one, two, dtype, 0.0);
            StringBuilder bad = new StringBuilder();
            for (BackendParity.Result r : results) {
                if (!r.ok()) {
                    bad.append('\n').append(r);
                }
            }
            assertTrue(results.size() > 40, "the suite covers the contract: " + results.size() + " outputs");
            assertTrue(bad.isEmpty(), "ops that depend on the thread count:" + bad);
            assertEquals(0, one.liveTensors() + two.liveTensors());
        }
    }
}
