package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;

class AtomicFileTest {
    @TempDir
    Path dir;

    @Test
    void failedWriteKeepsTheExistingFileAndLeavesNoTemporary() throws IOException {
        Path target = dir.resolve("out.safetensors");
        Files.write(target, new byte[] {1, 2, 3});
        assertThrows(IOException.class, () -> AtomicFile.write(target, out -> {
            out.write(new byte[1000]);
            throw new IOException("disk full (simulated)");
        }));
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(target));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary file left");
        }
    }

    @Test
    void failedTensorProducerLeavesNoOutput() {
        Path target = dir.resolve("new.safetensors");
        SafetensorsWriter w = new SafetensorsWriter().add("a", StDType.F32, new long[] {4}, out -> out.write(new byte[3]));
        assertThrows(IllegalStateException.class, () -> w.write(target));
        assertEquals(false, Files.exists(target));
    }

    @Test
    void missingFolderIsAnInputError() {
        assertThrows(InputException.class, () -> AtomicFile.write(dir.resolve("no/such/x.bin"), new byte[1]));
    }
}
