package tenmin.testing;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import tenmin.engine.api.Device;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchTesting;

/**
 * Base of test classes that run models on the torch backend with the CPU libtorch the build fetches: one
 * backend per class, closed after it; the class is skipped (with the locator's reasons) when no libtorch
 * is found. Subclasses carry {@code @Tag("torch")}.
 */
public abstract class TorchBackendTests {
    protected static TorchBackend torch;

    @BeforeAll
    static void startTorch() {
        torch = new TorchBackend(TorchTesting.libTorchOrSkip(), Device.CPU);
    }

    @AfterAll
    static void stopTorch() {
        if (torch != null) {
            torch.close();
            torch = null;
        }
    }
}
