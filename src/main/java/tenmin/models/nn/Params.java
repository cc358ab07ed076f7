package tenmin.models.nn;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Where a model's frozen weights come from while it is built: a checkpoint ({@link CheckpointParams}),
 * shapes only ({@link MetaParams}, to list the real SDXL key set without allocating it), or seeded
 * random values ({@link RandomParams}, for tests and GPU parity runs on models built in memory).
 *
 * <p>A {@code Params} is a view at a module path: {@link #at} descends ({@code p.at("input_blocks").at(4)}),
 * {@link #get} asks for the tensor {@code <prefix><path>.<name>}. Layers built from a view register
 * themselves in {@link #layers()} (shared by all views of one root), which is how LoRA networks find the
 * layers they wrap.
 */
public abstract class Params {
    private final Root root;
    private final String path;

    /** State shared by every view of one model. */
    protected static final class Root {
        final String keyPrefix;
        final List<AdaptableLayer> layers = new ArrayList<>();
        final Map<String, String> moduleClasses = new LinkedHashMap<>();

        Root(String keyPrefix) {
            this.keyPrefix = keyPrefix;
        }
    }

    protected Params(String keyPrefix) {
        this(new Root(keyPrefix), "");
    }

    protected Params(Root root, String path) {
        this.root = root;
        this.path = path;
    }

    /** A view of the same source at {@code path + "." + name}. */
    protected abstract Params view(Root root, String path);

    /**
     * The tensor {@code name} of this module, e.g. {@code weight}, checked against {@code shape}. Frozen,
     * in {@link #dtype()}, owned by {@link #scope()}; null in {@linkplain #isMeta() meta} mode.
     */
    public abstract Tensor get(String name, Shape shape);

    /** The dtype frozen weights are stored in on the device (bf16 on the GPU path, f32 on the CPU). */
    public abstract DType dtype();

    /** The scope that owns the weights (the model scope); null in meta mode. */
    public abstract Scope scope();

    /** True when only shapes are recorded and {@link #get} returns null. */
    public boolean isMeta() {
        return false;
    }

    /** The sub-module {@code name} (a dotted path element). */
    public Params at(String name) {
        return view(root, path.isEmpty() ? name : path + "." + name);
    }

    /** The sub-module with index {@code i} ({@code Sequential}/{@code ModuleList} children). */
    public Params at(int i) {
        return at(Integer.toString(i));
    }

    /** Module path relative to the model root, e.g. {@code input_blocks.4.1.proj_in}. */
    public String path() {
        return path;
    }

    /** The checkpoint key prefix of the model root, e.g. {@code model.diffusion_model.}. */
    public String keyPrefix() {
        return root.keyPrefix;
    }

    /** Full checkpoint key of tensor {@code name} of this module. */
    public String key(String name) {
        return root.keyPrefix + (path.isEmpty() ? name : path + "." + name);
    }

    /** Layers that accept adapters, in construction order (the model's module order). */
    public List<AdaptableLayer> layers() {
        return Collections.unmodifiableList(root.layers);
    }

    void register(AdaptableLayer layer) {
        root.layers.add(layer);
    }

    /**
     * Records that the module at this path is an instance of the reference class {@code className}
     * (e.g. sgm's {@code ResBlock}, {@code SpatialTransformer}) and returns this view. LoRA presets
     * select layers by the class of an enclosing module, as LyCORIS does by walking
     * {@code named_modules()}.
     */
    public Params declare(String className) {
        String previous = root.moduleClasses.putIfAbsent(path, className);
        if (previous != null && !previous.equals(className)) {
            throw new IllegalStateException("module " + path + " declared as " + previous + " and " + className);
        }
        return this;
    }

    /** Module path → reference class name of every {@linkplain #declare declared} module, in declaration order. */
    public Map<String, String> moduleClasses() {
        return Collections.unmodifiableMap(root.moduleClasses);
    }
}
