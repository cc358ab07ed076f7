package tenmin.engine.backend.torch;

import org.junit.jupiter.api.Assumptions;

/**
 * Loads libtorch for the torch tests once per test class, or skips the test with the locator's reasons
 * when none is found (a machine where the build could not fetch the Maven Central libtorch). A libtorch
 * that is found but fails to load is a failure, not a skip.
 */
public final class TorchTesting {
    private TorchTesting() {
    }

    /** The libtorch the locator finds, loaded; aborts (skips) the calling test when there is none. */
    public static LibTorch libTorchOrSkip() {
        LibTorchLocator.Found found;
        try {
            found = LibTorchLocator.standard().locate();
        } catch (LibTorchLocator.NotFoundException e) {
            Assumptions.abort("torch tests skipped: " + e.getMessage());
            throw e;
        }
        return LibTorch.load(found);
    }

    /** Makes {@code backend} take the inference formulations CUDA takes (group norm by statistics, split GEGLU). */
    public static void preferInferenceKernels(TorchBackend backend, boolean on) {
        backend.preferInferenceKernels(on);
    }
}
