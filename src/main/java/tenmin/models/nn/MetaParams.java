package tenmin.models.nn;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Records the key and shape of every weight a model asks for and allocates nothing: the real SDXL
 * configuration can be listed (and checked against {@code sdxl-keys.json}) without 10 GB of memory.
 * Layers built this way hold null tensors and must not be run.
 */
public final class MetaParams extends Params {
    private final Map<String, Shape> shapes;
    private final Set<String> embeddings;

    private MetaParams(Root root, String path, Map<String, Shape> shapes, Set<String> embeddings) {
        super(root, path);
        this.shapes = shapes;
        this.embeddings = embeddings;
    }

    public static MetaParams of(String keyPrefix) {
        return new MetaParams(new Root(keyPrefix), "", new LinkedHashMap<>(), new LinkedHashSet<>());
    }

    @Override
    protected Params view(Root root, String path) {
        return new MetaParams(root, path, shapes, embeddings);
    }

    @Override
    public Tensor get(String name, Shape shape) {
        Shape previous = shapes.putIfAbsent(key(name), shape);
        if (previous != null) {
            throw new IllegalStateException("weight " + key(name) + " requested twice");
        }
        return null;
    }

    @Override
    public Tensor getEmbedding(String name, Shape shape) {
        get(name, shape);
        embeddings.add(key(name));
        return null;
    }

    @Override
    public boolean isMeta() {
        return true;
    }

    @Override
    public Storage storage() {
        return Storage.of(DType.F32);
    }

    @Override
    public Scope scope() {
        return null;
    }

    /** Full checkpoint key → shape of every weight asked for, in construction order. */
    public Map<String, Shape> shapes() {
        return Collections.unmodifiableMap(shapes);
    }

    /** The keys asked for as embedding tables ({@link #getEmbedding}: kept in the compute dtype under fp8). */
    public Set<String> embeddings() {
        return Collections.unmodifiableSet(embeddings);
    }

    /**
     * Bytes of every weight asked for, kept as {@code storage} says: embedding tables in its compute dtype, the others
     * in its stored dtype (nothing is allocated; the real SDXL sizes are cheap).
     */
    public long bytes(Storage storage) {
        long n = 0;
        for (Map.Entry<String, Shape> e : shapes.entrySet()) {
            DType d = embeddings.contains(e.getKey()) ? storage.compute() : storage.stored();
            n += e.getValue().numel() * d.sizeBytes();
        }
        return n;
    }
}
