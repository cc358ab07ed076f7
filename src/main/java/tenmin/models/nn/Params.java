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

    /**
     * How a model's frozen weights are kept on the device.
     *
     * @param compute the dtype the model computes in (bf16 on the GPU path, f32 on the CPU), which its weights are
     *                cast to where they are used, and the dtype of its embedding tables ({@link #getEmbedding})
     * @param stored  the dtype of its other weights: {@code compute}, or F8_E4M3 for kohya's {@code --fp8_base}
     * @param via     with F8_E4M3: the dtype each value is rounded to before it is rounded to fp8 (F32: directly). The
     *                reference converts its fp32 U-Net to fp8, and its text encoders after it has moved them to the
     *                GPU in the mixed-precision dtype
     */
    public record Storage(DType compute, DType stored, DType via) {
        public Storage {
            if (!compute.isFloat() || compute.isStorageOnly()) {
                throw new IllegalArgumentException("weights must compute in f32, bf16 or f16, not " + compute);
            }
            if (stored != compute && stored != DType.F8_E4M3) {
                throw new IllegalArgumentException("weights computing in " + compute + " are stored in it or in "
                        + DType.F8_E4M3 + ", not " + stored);
            }
            if (!via.isFloat() || via.isStorageOnly()) {
                throw new IllegalArgumentException("fp8 weights are rounded via f32, bf16 or f16, not " + via);
            }
        }

        /** Stored as computed. */
        public static Storage of(DType dtype) {
            return new Storage(dtype, dtype, DType.F32);
        }

        /** Stored as fp8 e4m3fn, each value rounded to {@code via} first, and cast to {@code compute} at each use. */
        public static Storage fp8(DType compute, DType via) {
            return new Storage(compute, DType.F8_E4M3, via);
        }

        /** True when the weights are stored as fp8. */
        public boolean fp8() {
            return stored == DType.F8_E4M3;
        }

        /**
         * {@code values} rounded in place to {@link #via} (a no-op for F32, and for weights not stored as fp8): the
         * first of the reference's two roundings when the second is to fp8.
         */
        public void roundVia(float[] values) {
            if (fp8() && via != DType.F32) {
                for (int i = 0; i < values.length; i++) {
                    values[i] = tenmin.formats.Half.roundTo(values[i], via.stDType());
                }
            }
        }
    }

    /** A view of the same source at {@code path + "." + name}. */
    protected abstract Params view(Root root, String path);

    /**
     * The tensor {@code name} of this module, e.g. {@code weight}, checked against {@code shape}. Frozen,
     * in {@link #storage()}'s stored dtype, owned by {@link #scope()}; null in {@linkplain #isMeta() meta} mode.
     */
    public abstract Tensor get(String name, Shape shape);

    /**
     * An embedding table ({@code name} of this module): as {@link #get}, but in the compute dtype even when the other
     * weights are stored as fp8, as kohya keeps {@code text_model.embeddings} ({@code nn.Embedding} takes no fp8).
     */
    public abstract Tensor getEmbedding(String name, Shape shape);

    /** How the frozen weights are kept: the compute dtype, and fp8 storage or not. */
    public abstract Storage storage();

    /** The dtype the model computes in and its frozen weights are cast to ({@code storage().compute()}). */
    public DType dtype() {
        return storage().compute();
    }

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
