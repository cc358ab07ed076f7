package tenmin.models.clip;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import tenmin.models.clip.TextEncoderFixtureTest.Tolerance;
import tenmin.testing.Fixtures;
import tenmin.testing.TorchBackendTests;

/**
 * Every check of {@link TextEncoderFixtureTest} with the same model code on the torch backend (the CPU
 * libtorch the build fetches), against the fixtures directly, within the fixtures README bounds (which
 * CPU libtorch meets; issue 4 allows 1e-4 for backend parity).
 */
@Tag("torch")
class TextEncoderTorchTest extends TorchBackendTests {
    private static final Tolerance TORCH = Tolerance.FIXTURES;

    @TestFactory
    List<DynamicNode> everyModelFolderOnTorch() {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            folders.add(TextEncoderFixtureTest.folder(dir, torch, "text encoders on torch", TORCH));
        }
        return folders;
    }
}
