package tenmin.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/** {@link PyText#path}: what Python's {@code str(pathlib.PurePosixPath(s))} gives for these strings. */
class PyTextTest {
    @Test
    void pathDropsDotComponentsLikePathlib() {
        // expected values: pathlib.PurePosixPath(s) in CPython 3.12
        assertEquals("out/x.safetensors", PyText.path(Path.of("./out/x.safetensors")));
        assertEquals("out/x.safetensors", PyText.path(Path.of("out/./x.safetensors")));
        assertEquals("../out/x", PyText.path(Path.of("../out/x")));
        assertEquals("a/../b", PyText.path(Path.of("a/../b")));
        assertEquals("/tmp/x", PyText.path(Path.of("/tmp/./x")));
        assertEquals(".", PyText.path(Path.of(".")));
        assertEquals(".", PyText.path(Path.of("./.")));
        assertEquals("x", PyText.path(Path.of("x")));
    }
}
