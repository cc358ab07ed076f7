package tenmin.models.sdxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;

/**
 * A checkpoint that is not the configured SDXL U-Net fails with one line naming the file and the key,
 * and leaves nothing allocated: a U-Net key missing, one with another shape, and a text-encoder-only file.
 */
class UnetLoadErrorTest extends CpuBackendTests {
    @TestFactory
    List<DynamicTest> loadErrors() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            String missing = Unet.KEY_PREFIX + "middle_block.1.transformer_blocks.0.attn2.to_k.weight";
            String misShaped = Unet.KEY_PREFIX + "output_blocks.3.0.skip_connection.weight";
            tests.add(dynamicTest("unet missing key [" + m.name() + "]",
                    () -> expectError(m, missing, false, "missing key \"" + missing + "\"")));
            tests.add(dynamicTest("unet mis-shaped key [" + m.name() + "]",
                    () -> expectError(m, misShaped, true, "key \"" + misShaped + "\" has shape [3, 5]")));
        }
        return tests;
    }

    /** Copies the fixture checkpoint without {@code key} (or with it reshaped to [3, 5]) and loads it. */
    private static void expectError(ModelFixture m, String key, boolean reshape, String expected) throws IOException {
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        Path tmp = Files.createTempDirectory("unet-load");
        Path bad = tmp.resolve("bad.safetensors");
        try {
            try (SafetensorsFile src = SafetensorsFile.open(m.file("checkpoint.safetensors"))) {
                SafetensorsWriter w = new SafetensorsWriter();
                for (String name : src.names()) {
                    if (!name.startsWith(Unet.KEY_PREFIX)) {
                        continue;
                    }
                    if (!name.equals(key)) {
                        w.copy(src, name);
                    } else if (reshape) {
                        w.addFloats(name, StDType.F32, new long[] {3, 5}, new float[15]);
                    }
                }
                w.write(bad);
            }
            try (Scope model = Scope.root(backend, "model"); SafetensorsFile f = SafetensorsFile.open(bad)) {
                InputException e = assertThrows(InputException.class,
                        () -> Unet.fromCheckpoint(f, config, model, DType.F32));
                assertTrue(e.getMessage().contains(bad.toString()), e.getMessage());
                assertTrue(e.getMessage().contains(expected), e.getMessage());
                assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
                assertEquals(0, model.liveTensors(), "weights read before the error are released");
            }
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        } finally {
            Files.deleteIfExists(bad);
            Files.deleteIfExists(tmp);
        }
    }
}
