package tenmin.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.function.BiConsumer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;

/** Altered copies of a fixture checkpoint, for loader tests (other dtypes, missing or mis-shaped keys). */
public final class CheckpointCopies {
    private CheckpointCopies() {
    }

    /**
     * Writes {@code target}: every tensor of {@code source} except those in {@code drop}; floating tensors
     * stored as {@code floatType} (null: unchanged bytes); tensors named in {@code reshape} replaced by
     * zeros of the given shape. Returns {@code target}.
     */
    public static Path copy(Path source, Path target, StDType floatType, Set<String> drop,
                            Map<String, long[]> reshape) throws IOException {
        try (SafetensorsFile in = SafetensorsFile.open(source)) {
            SafetensorsWriter out = new SafetensorsWriter();
            for (String name : in.names()) {
                TensorInfo t = in.info(name);
                if (drop.contains(name)) {
                    continue;
                }
                if (reshape.containsKey(name)) {
                    long[] shape = reshape.get(name);
                    long n = 1;
                    for (long d : shape) {
                        n *= d;
                    }
                    out.addFloats(name, StDType.F32, shape, new float[(int) n]);
                } else if (floatType != null && t.dtype().isFloat()) {
                    out.addFloats(name, floatType, t.shape(), in.readFloats(name));
                } else {
                    out.copy(in, name);
                }
            }
            out.write(target);
        }
        return target;
    }

    /**
     * Loading {@code checkpoint} with {@code load} (in a fresh scope of {@code backend}) must fail with an
     * {@link InputException} whose one-line message starts with the file's path and contains
     * {@code fragment}; nothing may stay allocated.
     */
    public static void assertLoadFails(Path checkpoint, Backend backend, String fragment,
                                       BiConsumer<SafetensorsFile, Scope> load) {
        try (SafetensorsFile file = SafetensorsFile.open(checkpoint); Scope scope = Scope.root(backend, "load")) {
            InputException e = assertThrows(InputException.class, () -> load.accept(file, scope));
            String m = e.getMessage();
            assertTrue(m.startsWith(checkpoint + ": ") && m.contains(fragment) && !m.contains("\n"), m);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
