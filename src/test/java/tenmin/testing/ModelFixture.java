package tenmin.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;

/**
 * One model folder of the fixtures ({@code models/<name>/}): its name, files and {@code config.json},
 * and uploading a fixture tensor into a scope.
 */
public record ModelFixture(Path dir, JsonNode config) {

    /** Reads {@code dir/config.json}. */
    public static ModelFixture of(Path dir) {
        try {
            return new ModelFixture(dir, new ObjectMapper().readTree(Files.readString(dir.resolve("config.json"))));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The folder name, e.g. {@code tiny-a} (what dynamic test names carry). */
    public String name() {
        return dir.getFileName().toString();
    }

    /** A file of the folder, e.g. {@code unet-io.safetensors}. */
    public Path file(String name) {
        return dir.resolve(name);
    }

    /** Uploads tensor {@code key} of {@code file} (I64 as I64, floats as F32), named by its key. */
    public static Tensor tensor(SafetensorsFile file, String key, Scope scope) {
        Shape shape = Shape.of(file.info(key).shape());
        Tensor t = file.info(key).dtype() == StDType.I64
                ? scope.backend().fromHost(scope, file.readLongs(key), shape)
                : scope.fromHost(file.readFloats(key), shape, DType.F32);
        return t.named(key);
    }
}
