package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.parity.BackendParity;

/**
 * The op-by-op parity suite: every contract op, forward and backward, on the torch backend (CPU
 * libtorch) against the pure-Java {@code cpu} backend with the same inputs: fp32 within 1e-5 relative,
 * bf16 and fp16 within 2e-2; in 16 bits also with the inference formulations the backend takes on CUDA.
 */
@Tag("torch")
class TorchParityTest {
    @ParameterizedTest
    @CsvSource({"F32, 1e-5, false", "BF16, 2e-2, false", "F16, 2e-2, false", "BF16, 2e-2, true", "F16, 2e-2, true"})
    void everyOpMatchesTheCpuBackend(DType dtype, double tolerance, boolean inferenceKernels) {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        Backend cpu = BackendParity.cpuBackend().orElse(null);
        Assumptions.assumeTrue(cpu != null, "parity skipped: the cpu backend (tenmin.engine.backend.cpu) is not built yet");
        try (cpu; TorchBackend torch = new TorchBackend(lib, Device.CPU)) {
            torch.preferInferenceKernels(inferenceKernels);   // true: the formulations CUDA takes for sampling
            List<BackendParity.Result> results = BackendParity.compare(cpu, torch, dtype, tolerance);
            StringBuilder bad = new StringBuilder();
            for (BackendParity.Result r : results) {
                if (!r.ok()) {
                    bad.append('\n').append(r);
                }
            }
            assertTrue(bad.isEmpty(), "ops differing from the cpu backend:" + bad);
            assertTrue(torch.liveTensors() == 0, "torch tensors left open: " + torch.liveTensors());
        }
    }
}
