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
 * the build fetches), against vae-io directly within the fixtures README's bound (the row-band checks are the
 * cpu backend's own: libtorch needs no bands).
 */
@Tag("torch")
class VaeTorchTest extends TorchBackendTests {
    @TestFactory
    List<DynamicNode> everyModelFolderOnTorch() {
        return everyModelFolder(torch, "vae on torch");
    }

    /** {@link VaeFixtureTest}'s checks of every fixture model folder on {@code backend}. */
    static List<DynamicNode> everyModelFolder(tenmin.engine.api.Backend backend, String label) {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            folders.add(VaeFixtureTest.folder(dir, backend, label, VaeFixtureTest.FORWARD_REL));
        }
        return folders;
    }
}
