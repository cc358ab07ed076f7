package tenmin.models.vae;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import tenmin.testing.Fixtures;
import tenmin.testing.TorchBackendTests;

/**
 * Every check of {@link VaeFixtureTest} with the same model code on the torch backend (the CPU libtorch
 * the build fetches), against vae-io directly within the fixtures README's bound.
 */
@Tag("torch")
class VaeTorchTest extends TorchBackendTests {
    @TestFactory
    List<DynamicNode> everyModelFolderOnTorch() {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            // Bands of a few rows only: one-row bands cost thousands of small native calls and test nothing new.
            folders.add(VaeFixtureTest.folder(dir, torch, "vae on torch", VaeFixtureTest.FORWARD_REL, new long[] {200_000}));
        }
        return folders;
    }
}
