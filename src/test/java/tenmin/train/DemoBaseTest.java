package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.models.SdxlConfig;

/** The demo's base.safetensors: written once, kept while it holds the demo's model, written again otherwise. */
class DemoBaseTest {
    @TempDir
    Path tmp;

    @Test
    void writtenOnceKeptThenReplacedWhenItIsNotTheDemosModel() throws Exception {
        try (CpuBackend backend = new CpuBackend(2); Scope root = Scope.root(backend, "test")) {
            Path file = DemoData.writeBase(tmp, SdxlConfig.tiny(), root, Reporter.SILENT);
            assertEquals(tmp.resolve(DemoData.BASE), file);
            byte[] first = Files.readAllBytes(file);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(StDType.F16, f.info("model.diffusion_model.out.2.weight").dtype());
            }
            FileTime old = FileTime.fromMillis(1_000_000L);
            Files.setLastModifiedTime(file, old);
            DemoData.writeBase(tmp, SdxlConfig.tiny(), root, Reporter.SILENT);
            assertEquals(old, Files.getLastModifiedTime(file), "the same model is not written again");

            Files.write(file, new byte[] {1, 2, 3});                                     // not a checkpoint
            DemoData.writeBase(tmp, SdxlConfig.tiny(), root, Reporter.SILENT);
            assertArrayEquals(first, Files.readAllBytes(file));
            Files.setLastModifiedTime(file, old);
            try (var w = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
                w.truncate(Files.size(file) / 2);                                        // a cut-off copy
            }
            DemoData.writeBase(tmp, SdxlConfig.tiny(), root, Reporter.SILENT);
            assertNotEquals(old, Files.getLastModifiedTime(file));
            assertArrayEquals(first, Files.readAllBytes(file));
            assertTrue(backend.liveTensors() == 0, "tensors left alive");
        }
    }
}
