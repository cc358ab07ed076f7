package tenmin.models.vae;

import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import tenmin.engine.backend.torch.TorchTesting;
import tenmin.testing.TorchBackendTests;

/**
 * {@link VaeTorchTest} with the inference formulations CUDA takes (the fp32 VAE's group norms by
 * {@code var_mean} statistics + inference batch norm), on the CPU libtorch: encode and decode still match vae-io
 * within the fixtures README's bound.
 */
@Tag("torch")
class VaeTorchInferenceKernelsTest extends TorchBackendTests {
    @BeforeAll
    static void cudaFormulations() {
        TorchTesting.preferInferenceKernels(torch, true);
    }

    @TestFactory
    List<DynamicNode> everyModelFolderWithTheCudaFormulations() {
        return VaeTorchTest.everyModelFolder(torch, "vae on torch, CUDA formulations");
    }
}
