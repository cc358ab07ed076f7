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
 * the device dtype (fp8/fp16/bf16/fp32 files all work; a 7 GB file never enters the heap whole), or to fp8 e4m3fn
 * ({@link Params.Storage#fp8()}) from the file's value (rounded first to the storage's {@code via} dtype). A missing
 * or mis-shaped key is an {@link InputException} naming the file and the key.
 */
public final class CheckpointParams extends Params {
    private final Source source;

    private record Source(SafetensorsFile file, Scope scope, Storage storage, Set<String> used) {
    }

    private CheckpointParams(Root root, String path, Source source) {
        super(root, path);
        this.source = source;
    }

    /** Weights under {@code keyPrefix} (e.g. {@code model.diffusion_model.}) of {@code file}, stored as {@code dtype}. */
    public static CheckpointParams of(SafetensorsFile file, String keyPrefix, Scope scope, DType dtype) {
        return of(file, keyPrefix, scope, Storage.of(dtype));
    }

    /** Weights under {@code keyPrefix} of {@code file}, kept as {@code storage} says (in fp8 or not). */
    public static CheckpointParams of(SafetensorsFile file, String keyPrefix, Scope scope, Storage storage) {
        return new CheckpointParams(new Root(keyPrefix), "", new Source(file, scope, storage, new LinkedHashSet<>()));
    }

    @Override
    protected Params view(Root root, String path) {
        return new CheckpointParams(root, path, source);
    }

    @Override
    public Tensor get(String name, Shape shape) {
        return read(name, shape, source.storage.stored());
    }

    @Override
    public Tensor getEmbedding(String name, Shape shape) {
        return read(name, shape, source.storage.compute());
    }

    private Tensor read(String name, Shape shape, DType dtype) {
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
        if (stored == dtype) {
            t = source.scope.fromHostBytes(file.segment(key), shape, dtype);
        } else if (dtype == DType.F8_E4M3) {
            float[] values = file.readFloats(key);
            source.storage.roundVia(values);
            t = source.scope.fromHost(values, shape, dtype);                 // rounded to fp8 by the backend
        } else if (dtype == DType.F32 && (stored == DType.F16 || stored == DType.BF16 || stored == DType.F8_E4M3)) {
            // frozen weights: the cpu backend keeps these exact 8- and 16-bit values as they are
            t = source.scope.backend().frozenFromHostBytes(source.scope, file.segment(key), shape, stored);
        } else {
            t = source.scope.fromHost(file.readFloats(key), shape, dtype);
        }
        file.release(key);
        source.used.add(key);
        return t.named(key);
    }

    @Override
    public Storage storage() {
        return source.storage;
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
