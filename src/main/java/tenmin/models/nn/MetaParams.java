package tenmin.models.nn;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

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

    private MetaParams(Root root, String path, Map<String, Shape> shapes) {
        super(root, path);
        this.shapes = shapes;
    }

    public static MetaParams of(String keyPrefix) {
        return new MetaParams(new Root(keyPrefix), "", new LinkedHashMap<>());
    }

    @Override
    protected Params view(Root root, String path) {
        return new MetaParams(root, path, shapes);
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
    public boolean isMeta() {
        return true;
    }

    @Override
    public DType dtype() {
        return DType.F32;
    }

    @Override
    public Scope scope() {
        return null;
    }

    /** Full checkpoint key → shape of every weight asked for, in construction order. */
    public Map<String, Shape> shapes() {
        return Collections.unmodifiableMap(shapes);
    }
}
