package tenmin.engine.backend.cpu;

import tenmin.engine.api.Backend;
import tenmin.engine.testing.BackendParityTest;

/**
 * Every cpu kernel gives bit-identical results on one thread and on two: work is split into pieces
 * whose per-element summation order does not depend on the thread count (checkpointing and
 * reproducible runs rely on it). Also exercises the parity harness other backends use.
 */
class CpuThreadParityTest extends BackendParityTest {
    @Override
    protected Backend reference() {
        return new CpuBackend(1);
    }

    @Override
    protected Backend candidate() {
        return new CpuBackend(2);
    }

    @Override
    protected double tolerance() {
        return 0;
    }
}
