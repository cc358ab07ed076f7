package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.parity.BackendParity;

/**
 * The torch backend on CUDA: skipped with the reason where libtorch has no CUDA or no GPU is visible
 * (every CI machine); on a GPU machine, run with TENMIN_LIBTORCH pointing at a CUDA libtorch.
 */
@Tag("gpu")
class TorchCudaTest {
    private static LibTorch cudaOrSkip() {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        Assumptions.assumeTrue(lib.cudaDeviceCount() > 0, "GPU tests skipped: " + lib.cudaProblem()
                + " (" + lib.describe() + ")");
        return lib;
    }

    @Test
    void hostCopiesRoundTripThroughTheGpu() {
        try (TorchBackend gpu = new TorchBackend(cudaOrSkip(), Device.cuda(0)); Scope s = Scope.root(gpu, "t")) {
            float[] v = {1, -2, 3.5f, 1e-3f};
            assertTrue(java.util.Arrays.equals(v, s.fromHost(v, Shape.of(2, 2), DType.F32).toHost()));
        }
    }

    @Test
    void everyOpMatchesTheCpuBackendOnCuda() {
        LibTorch lib = cudaOrSkip();
        Backend cpu = BackendParity.cpuBackend().orElse(null);
        Assumptions.assumeTrue(cpu != null, "the cpu backend is not built");
        try (cpu; TorchBackend gpu = new TorchBackend(lib, Device.cuda(0))) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                List<BackendParity.Result> r = BackendParity.compare(cpu, gpu, dtype, dtype == DType.F32 ? 1e-4 : 2e-2);
                assertEquals(List.of(), r.stream().filter(x -> !x.ok()).toList());
            }
        }
    }
}
