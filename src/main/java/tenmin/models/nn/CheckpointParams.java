package tenmin.models.nn;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;

/**
 * Weights read from a single-file checkpoint through the memory-mapped reader, converted per tensor to
 * the device dtype (fp16/bf16/fp32 files all work; a 7 GB file never enters the heap whole). A missing
 * or mis-shaped key is an {@link InputException} naming the file and the key.
 */
public final class CheckpointParams extends Params {
    private final Source source;

    private record Source(SafetensorsFile file, Scope scope, DType dtype, Set<String> used) {
    }

    private CheckpointParams(Root root, String path, Source source) {
        super(root, path);
        this.source = source;
    }

    /** Weights under {@code keyPrefix} (e.g. {@code model.diffusion_model.}) of {@code file}, stored as {@code dtype}. */
    public static CheckpointParams of(SafetensorsFile file, String keyPrefix, Scope scope, DType dtype) {
        return new CheckpointParams(new Root(keyPrefix), "", new Source(file, scope, dtype, new LinkedHashSet<>()));
    }

    @Override
    protected Params view(Root root, String path) {
        return new CheckpointParams(root, path, source);
    }

    @Override
    public Tensor get(String name, Shape shape) {
        String key = key(name);
        SafetensorsFile file = source.file;
        if (!file.contains(key)) {
            throw new InputException(file.path() + ": missing key \"" + key + "\" (expected shape " + shape
                    + "); is this an SDXL checkpoint of the configured size?");
        }
        TensorInfo info = file.info(key);
        if (!Arrays.equals(info.shape(), shape.dimsLong())) {
            throw new InputException(file.path() + ": key \"" + key + "\" has shape " + Arrays.toString(info.shape())
                    + ", expected " + shape + "; is this an SDXL checkpoint of the configured size?");
        }
        if (!info.dtype().isFloat()) {
            throw new InputException(file.path() + ": key \"" + key + "\" has dtype " + info.dtype()
                    + ", expected a floating type");
        }
        Tensor t;
        DType stored = DType.of(info.dtype());
        if (stored == source.dtype) {
            t = source.scope.fromHostBytes(file.segment(key), shape, source.dtype);
        } else if (source.dtype == DType.F32 && (stored == DType.F16 || stored == DType.BF16)) {
            // frozen weights: the cpu backend keeps these exact 16-bit values in 16 bits
            t = source.scope.backend().frozenFromHostBytes(source.scope, file.segment(key), shape, stored);
        } else {
            t = source.scope.fromHost(file.readFloats(key), shape, source.dtype);
        }
        file.release(key);
        source.used.add(key);
        return t.named(key);
    }

    @Override
    public DType dtype() {
        return source.dtype;
    }

    @Override
    public Scope scope() {
        return source.scope;
    }

    /** Every checkpoint key read so far, in reading order. */
    public Set<String> usedKeys() {
        return Collections.unmodifiableSet(source.used);
    }
}
