package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The search order and the reasons given for rejected candidates; no library is loaded here. */
class LibTorchLocatorTest {
    @TempDir
    Path tmp;

    private Path fakeLibDir(String name, boolean cuda) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.writeString(dir.resolve("libtorch_cpu.so"), "x");
        Files.writeString(dir.resolve("libc10.so"), "x");
        if (cuda) {
            Files.writeString(dir.resolve("libtorch_cuda.so"), "x");
        }
        return dir;
    }

    @Test
    void environmentVariableComesFirst() throws IOException {
        Path env = fakeLibDir("env", true);
        Path cache = fakeLibDir("libtorch-cpu-2.10.0-1.5.13", false);
        LibTorchLocator.Found f = new LibTorchLocator(Map.of(LibTorchLocator.ENV, env.toString()), null, cache).locate();
        assertEquals(env, f.libDir());
        assertEquals(LibTorchLocator.ENV, f.source());
        assertTrue(f.hasCuda());
    }

    @Test
    void rejectsAnEnvironmentFolderWithoutLibtorchAndFallsBackToTheMavenCache() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Path cache = fakeLibDir("libtorch-cpu-2.10.0-1.5.13", false);
        LibTorchLocator.Found f = new LibTorchLocator(Map.of(LibTorchLocator.ENV, empty.toString()),
                tmp.resolve("no-such-python").toString(), cache).locate();
        assertEquals(cache, f.libDir());
        assertEquals("2.10.0", f.version());
        assertFalse(f.hasCuda());
        assertEquals(2, f.rejected().size(), f.rejected().toString());
        assertTrue(f.rejected().get(0).contains("no libtorch_cpu.so in it"), f.rejected().get(0));
        assertTrue(f.rejected().get(1).startsWith("python3 torch: "), f.rejected().get(1));
        assertTrue(f.rejected().get(1).contains("cannot run it"), f.rejected().get(1));
    }

    @Test
    void readsTheVersionOfAPythonInstall() throws IOException {
        Path torch = Files.createDirectories(tmp.resolve("site-packages/torch"));
        Files.writeString(torch.resolve("version.py"), "__version__ = '2.11.0+cu130'\ngit_version = 'abc'\n");
        Path lib = fakeLibDir("site-packages/torch/lib", true);
        assertEquals("2.11.0+cu130", LibTorchLocator.versionOf(lib));
    }

    @Test
    void readsTheVersionOfALibtorchZip() throws IOException {
        Path libtorch = Files.createDirectories(tmp.resolve("libtorch"));
        Files.writeString(libtorch.resolve("build-version"), "2.11.0+cu130\n");
        Path lib = fakeLibDir("libtorch/lib", true);
        assertEquals("2.11.0+cu130", LibTorchLocator.versionOf(lib));
        assertEquals("(unknown version)", LibTorchLocator.versionOf(fakeLibDir("elsewhere/lib", false)));
    }

    @Test
    void nothingFoundListsEveryCandidate() {
        LibTorchLocator.NotFoundException e = assertThrows(LibTorchLocator.NotFoundException.class,
                () -> new LibTorchLocator(Map.of(), null, tmp.resolve("missing")).locate());
        assertEquals(3, e.rejected().size());
        assertTrue(e.getMessage().contains("TENMIN_LIBTORCH is not set"), e.getMessage());
        assertTrue(e.getMessage().contains("no such folder"), e.getMessage());
        assertTrue(e.getMessage().contains("scripts/test"), e.getMessage());
    }

    @Test
    void emptyLibraryFileIsRejected() throws IOException {
        Path dir = fakeLibDir("broken", false);
        Files.writeString(dir.resolve("libc10.so"), "");
        assertEquals("libc10.so is empty", LibTorchLocator.check(dir));
    }
}
