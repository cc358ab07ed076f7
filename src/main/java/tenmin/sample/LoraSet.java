package tenmin.sample;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.formats.Hashes;
import tenmin.lora.BlockLayout;
import tenmin.lora.BlockWeights;
import tenmin.lora.LoConModule;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConTarget;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipKeys;
import tenmin.models.clip.SdxlTextEncoders;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.MetaParams;
import tenmin.models.sdxl.Unet;

/**
 * LoRAs applied to a loaded model for sampling, without writing any file: every module of every file becomes
 * a bypass branch on its layer ({@code y = layer(x) + Σ multiplier · (alpha/r) · up(down(x))}), with a
 * multiplier per module, by default {@code strength × block ratio} (the ratio of the block-weight vector,
 * text-encoder and other non-block modules taking BASE as in Inspire-Pack's loader; postprocess-spec §4.3).
 * Several LoRAs on one layer add up.
 *
 * <p>Two steps, so bad input fails before a multi-GB checkpoint is read: {@link #prepare} opens each file,
 * checks that it is a usable LoRA whose modules all have a layer in the model's configuration, resolves its
 * block vector and computes its A1111 hash; {@link #attach} loads the tensors onto the model's layers.
 *
 * <p>Multipliers can also differ per sample of a batch ({@link #apply(double[][], int[], Scope)}): the block
 * atlas renders several LoRA configurations in one U-Net batch that way. Not thread-safe.
 */
public final class LoraSet implements AutoCloseable {
    /** The unit name of modules outside the U-Net blocks (text encoders, time/label embeddings, in/out convs). */
    public static final String BASE = "BASE";
    private static final int NAMES_SHOWN = 5;

    /**
     * One LoRA file, checked against a model configuration.
     *
     * @param spec    what the user asked for
     * @param hash    A1111's short LoRA hash: 12 hex digits of the SHA-256 of the data section
     * @param modules module names of the file, sorted
     * @param layout  the file's U-Net blocks in chop's layout (the atlas' units after BASE)
     * @param weights the resolved block vector, or null without one
     */
    public record Prepared(LoraSpec spec, String hash, List<String> modules, BlockLayout layout, BlockWeights weights) {
        public Prepared {
            modules = List.copyOf(modules);
        }

        /** The multiplier of {@code module}: strength × its block ratio. */
        public double multiplier(String module) {
            return spec.strength() * (weights == null ? 1.0 : weights.ratio(module));
        }

        /** Index of the module's block in {@link #layout()}, or -1 for BASE. */
        public int blockOf(String module) {
            return layout.indexOfModule(module);
        }
    }

    /**
     * One loaded module.
     *
     * @param lora       index of its file in {@link #prepared()}
     * @param module     the branch
     * @param block      its block in that file's layout, -1 for BASE
     * @param multiplier strength × block ratio
     */
    public record Module(int lora, LoConModule module, int block, double multiplier) {
        public String name() {
            return module.name();
        }

        /** True for text-encoder modules (their multipliers change the text conditioning). */
        public boolean isTextEncoder() {
            return isTextEncoderModule(module.name());
        }
    }

    private final List<Prepared> prepared;
    private final List<Module> modules;
    private final Map<AdaptableLayer, List<Integer>> byLayer; // layer → indices into modules, in module order
    private final Scope scope;
    /** The multipliers merged into the frozen weights by {@link #merge}, or null (bypass branches). */
    private double[] merged;

    private LoraSet(List<Prepared> prepared, List<Module> modules, Scope scope) {
        this.prepared = List.copyOf(prepared);
        this.modules = List.copyOf(modules);
        this.scope = scope;
        Map<AdaptableLayer, List<Integer>> layers = new LinkedHashMap<>(); // Linear/Conv2d use identity equality
        for (int i = 0; i < modules.size(); i++) {
            layers.computeIfAbsent(modules.get(i).module().layer(), l -> new ArrayList<>()).add(i);
        }
        this.byLayer = Collections.unmodifiableMap(layers);
    }

    /** No LoRA at all. */
    public static LoraSet empty() {
        return new LoraSet(List.of(), List.of(), null);
    }

    // ---- loading -------------------------------------------------------------------------------

    /**
     * Checks each LoRA against the layers a model of {@code config} has, before that model is loaded: the
     * file exists and is a LoRA, every module is a supported linear/conv LoRA or LoCon (no DoRA, Tucker,
     * LoHa), every module names a layer of the model, the vector resolves. Also computes the hashes.
     *
     * @throws InputException one line naming the file and what is wrong
     */
    public static List<Prepared> prepare(List<LoraSpec> specs, SdxlConfig config, BlockWeights.Options options,
                                         Reporter reporter) {
        Map<String, AdaptableLayer> layers = candidates(metaLayers(config));
        List<Prepared> out = new ArrayList<>();
        for (LoraSpec spec : specs) {
            if (!Files.isRegularFile(spec.file())) {
                throw new InputException("--lora " + spec.file() + ": no such file");
            }
            try (LoraFile lora = LoraFile.open(spec.file())) {
                List<String> names = new ArrayList<>();
                List<String> unknown = new ArrayList<>();
                for (LoraModule m : lora.modules()) {
                    m.requireSupported();
                    if (m.hasDora()) {
                        throw new InputException(spec.file() + ": module " + m.name()
                                + " is DoRA (dora_scale); sampling DoRA modules is not supported");
                    }
                    names.add(m.name());
                    AdaptableLayer layer = layers.get(m.name());
                    if (layer == null) {
                        unknown.add(m.name());
                    } else {
                        checkShapes(spec, m, layer);
                    }
                }
                unknown.addAll(lora.looseKeys());
                if (!unknown.isEmpty()) {
                    throw new InputException(spec.file() + ": " + unknown.size() + " of " + names.size()
                            + " LoRA modules have no layer in this model: " + shortList(unknown)
                            + " (a LoRA for another model, or with other module names?)");
                }
                BlockWeights weights = null;
                if (spec.vector() != null) {
                    try {
                        weights = BlockWeights.resolve(spec.vector(), names, options);
                    } catch (InputException e) {
                        throw new InputException("--lora " + spec.file() + ": " + e.getMessage(), e);
                    }
                    for (String w : weights.warnings()) {
                        reporter.log(Reporter.Level.WARNING, "warning: " + spec.file() + ": " + w);
                    }
                }
                String hash = Hashes.dataSha256(lora.file()).substring(0, 12);
                out.add(new Prepared(spec, hash, names, BlockLayout.of(lora.file().names()), weights));
            }
        }
        return out;
    }

    /**
     * Loads the prepared LoRAs onto {@code models}' layers (U-Net and both text encoders), tensors in fp32 in
     * a child scope of {@code parent}, and applies the default multipliers.
     *
     * @throws InputException naming the file and module when a tensor does not fit its layer
     */
    public static LoraSet attach(List<Prepared> prepared, SdxlModels models, Scope parent) {
        if (prepared.isEmpty()) {
            return empty();
        }
        Map<String, AdaptableLayer> layers = candidates(new Layers(models.unet().layers(),
                models.textEncoders().te1().adaptableLayers(), models.textEncoders().te2().adaptableLayers()));
        List<LoConTarget> targets = new ArrayList<>();
        layers.forEach((name, layer) -> targets.add(new LoConTarget(name, layer, 1, 1.0))); // rank from the file
        Scope scope = parent.child("loras");
        List<Module> modules = new ArrayList<>();
        try {
            for (int i = 0; i < prepared.size(); i++) {
                Prepared p = prepared.get(i);
                LoConNetwork net = LoConNetwork.loadMatching(p.spec().file(), targets, scope);
                net.detach(); // the set manages the adapter slots (several LoRAs may share a layer)
                for (LoConModule loaded : net.modules()) {
                    LoConModule m = inDtype(loaded, isTextEncoderModule(loaded.name()) ? models.dtypes().textEncoders()
                            : models.dtypes().unet(), scope);
                    modules.add(new Module(i, m, p.blockOf(m.name()), p.multiplier(m.name())));
                }
            }
        } catch (RuntimeException e) {
            scope.close();
            throw e;
        }
        LoraSet set = new LoraSet(prepared, modules, scope);
        set.apply(set.defaultMultipliers());
        return set;
    }

    /**
     * The module with its tensors stored in the network's compute dtype (bf16 on the GPU path), so a sampling
     * step does not cast every LoRA weight again; the fp32 tensors are released. Unchanged in fp32.
     */
    private static LoConModule inDtype(LoConModule m, DType dtype, Scope scope) {
        if (m.down().dtype() == dtype) {
            return m;
        }
        Tensor down = scope.backend().cast(scope, m.down(), dtype).named(m.down().name());
        Tensor up = scope.backend().cast(scope, m.up(), dtype).named(m.up().name());
        m.down().close();
        m.up().close();
        return new LoConModule(m.name(), m.layer(), down, up, m.alpha());
    }

    /** The file's down/up shapes must be those of a LoCon module of its rank on {@code layer}. */
    private static void checkShapes(LoraSpec spec, LoraModule m, AdaptableLayer layer) {
        LoConTarget t = new LoConTarget(m.name(), layer, m.rank(), 1.0);
        long[] down = m.tensors().get(LoraModule.DOWN).shape();
        long[] up = m.tensors().get(LoraModule.UP).shape();
        if (!Arrays.equals(down, t.downShape().dimsLong()) || !Arrays.equals(up, t.upShape().dimsLong())) {
            throw new InputException(spec.file() + ": module " + m.name() + " has lora_down " + Arrays.toString(down)
                    + " and lora_up " + Arrays.toString(up) + ", but its layer " + layer.path() + " needs "
                    + t.downShape() + " and " + t.upShape() + " (a LoRA for another model?)");
        }
    }

    /** {@code lora_te1_…} and {@code lora_te2_…} modules. */
    static boolean isTextEncoderModule(String name) {
        return name.startsWith(LoConPreset.TE1 + "_") || name.startsWith(LoConPreset.TE2 + "_");
    }

    /** The adaptable layers of a model, by network. */
    private record Layers(List<AdaptableLayer> unet, List<AdaptableLayer> te1, List<AdaptableLayer> te2) {
    }

    private static Layers metaLayers(SdxlConfig config) {
        Unet unet = Unet.meta(config.unet());
        SdxlTextEncoders te = SdxlTextEncoders.build(MetaParams.of(ClipKeys.TE1_PREFIX),
                MetaParams.of(ClipKeys.TE2_PREFIX), config.te1(), config.te2());
        return new Layers(unet.layers(), te.te1().adaptableLayers(), te.te2().adaptableLayers());
    }

    /** kohya module name → layer for every layer a LoRA may adapt: text encoders first, then the U-Net. */
    private static Map<String, AdaptableLayer> candidates(Layers layers) {
        Map<String, AdaptableLayer> out = new LinkedHashMap<>();
        for (AdaptableLayer l : layers.te1()) {
            out.put(LoConTarget.nameFor(LoConPreset.TE1, l.path()), l);
        }
        for (AdaptableLayer l : layers.te2()) {
            out.put(LoConTarget.nameFor(LoConPreset.TE2, l.path()), l);
        }
        for (AdaptableLayer l : layers.unet()) {
            out.put(LoConTarget.nameFor(LoConPreset.UNET, l.path()), l);
        }
        return out;
    }

    private static String shortList(List<String> names) {
        List<String> shown = names.subList(0, Math.min(NAMES_SHOWN, names.size()));
        return String.join(", ", shown) + (names.size() > NAMES_SHOWN ? " and " + (names.size() - NAMES_SHOWN) + " more" : "");
    }

    // ---- what is loaded ------------------------------------------------------------------------

    public List<Prepared> prepared() {
        return prepared;
    }

    /** Every module of every file, files in order. */
    public List<Module> modules() {
        return modules;
    }

    public boolean isEmpty() {
        return modules.isEmpty();
    }

    /** strength × block ratio for each module of {@link #modules()}. */
    public double[] defaultMultipliers() {
        double[] m = new double[modules.size()];
        for (int i = 0; i < m.length; i++) {
            m[i] = modules.get(i).multiplier();
        }
        return m;
    }

    /**
     * The multipliers of the text-encoder modules in {@code multipliers}, as a key: two configurations with
     * equal keys give the same text conditioning.
     */
    public String textEncoderKey(double[] multipliers) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < modules.size(); i++) {
            if (modules.get(i).isTextEncoder() && multipliers[i] != 0) {
                sb.append(i).append('=').append(multipliers[i]).append(';');
            }
        }
        return sb.toString();
    }

    // ---- merging -------------------------------------------------------------------------------

    /**
     * Adds every module's delta at its default multiplier into its layer's frozen weight, once, as ComfyUI and
     * A1111 apply a LoRA: {@code W ← cast(W + Σ multiplier · (alpha/r) · up·down)} computed in fp32 and stored in
     * the weight's dtype, in the weight's scope; the old weights and the LoRA tensors are released and no branch
     * runs afterwards, so a sampling step costs what it costs without the LoRA (the recipe LoCon's rank-256 3×3
     * branches add 20-90 % to a convolution). For runs whose every render uses the default multipliers
     * ({@code tenmin sample}); after it, {@link #apply} accepts only those. Memory: one layer's fp32 sum at a time.
     */
    public void merge() {
        if (merged != null || modules.isEmpty()) {
            merged = defaultMultipliers();
            return;
        }
        double[] m = defaultMultipliers();
        for (Map.Entry<AdaptableLayer, List<Integer>> e : byLayer.entrySet()) {
            AdaptableLayer layer = e.getKey();
            Tensor w = layer.weight();
            Scope owner = w.scope();
            tenmin.engine.api.Backend be = owner.backend();
            Tensor mergedWeight;
            try (Scope tmp = owner.child("lora merge")) {
                Tensor acc = be.cast(tmp, w, DType.F32);
                for (int i : e.getValue()) {
                    if (m[i] == 0) {
                        continue;
                    }
                    acc = modules.get(i).module().addDelta(tmp, acc, m[i]);
                }
                mergedWeight = store(be, owner, acc, w).named(w.name());
            }
            layer.replaceWeight(mergedWeight);
            layer.setAdapter(null);
            w.close();
        }
        merged = m;
        if (scope != null) {
            scope.close(); // the LoRA tensors are in the weights now
        }
    }

    /**
     * The merged fp32 sum stored as {@code like} is: in its dtype, or, for frozen weights a backend keeps in 16 bits
     * (the cpu backend's fp16/bf16 checkpoint weights), rounded to those 16 bits and kept so, so that merging
     * takes no more memory than the weights it replaces (and rounds as ComfyUI does for a 16-bit model).
     */
    private static Tensor store(tenmin.engine.api.Backend be, Scope owner, Tensor sum, Tensor like) {
        DType stored = be.frozenStorage(like);
        if (stored == like.dtype() || (stored != DType.F16 && stored != DType.BF16)) {
            return be.cast(owner, sum, like.dtype());
        }
        float[] v = be.toHost(sum);
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(2 * v.length);
        try {
            tenmin.formats.SafetensorsWriter.writeFloats(bytes, v, stored.stDType()); // little-endian 16-bit values
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e); // a byte array stream does not fail
        }
        return be.frozenFromHostBytes(owner, java.lang.foreign.MemorySegment.ofArray(bytes.toByteArray()), like.shape(),
                stored);
    }

    /** True after {@link #merge}. */
    public boolean isMerged() {
        return merged != null;
    }

    // ---- applying ------------------------------------------------------------------------------

    /** Applies one multiplier per module to every sample (0 removes a branch). */
    public void apply(double[] multipliers) {
        apply(new double[][] {multipliers}, new int[] {0}, null);
    }

    /**
     * Applies per-sample multipliers: sample n of the next batches gets {@code configs[configOfSample[n]]}.
     * Modules whose multiplier is the same for every sample are scaled by a number; the others multiply their
     * branch by an (N) tensor created in {@code scope} (the caller closes it after the batch), so every sample's
     * U-Net output is what {@link #apply(double[])} with its own configuration gives.
     */
    public void apply(double[][] configs, int[] configOfSample, Scope scope) {
        for (double[] c : configs) {
            if (c.length != modules.size()) {
                throw new IllegalArgumentException(c.length + " multipliers for " + modules.size() + " modules");
            }
            if (merged != null && !Arrays.equals(c, merged)) {
                throw new IllegalStateException("the LoRAs are merged into the weights at their default multipliers;"
                        + " other multipliers need the bypass form (do not merge)");
            }
        }
        if (merged != null) {
            return;
        }
        int n = configOfSample.length;
        for (Map.Entry<AdaptableLayer, List<Integer>> e : byLayer.entrySet()) {
            List<LayerBranches.Branch> branches = new ArrayList<>();
            for (int i : e.getValue()) {
                float[] perSample = new float[n];
                boolean uniform = true;
                boolean anyNonZero = false;
                for (int s = 0; s < n; s++) {
                    perSample[s] = (float) configs[configOfSample[s]][i];
                    uniform &= perSample[s] == perSample[0];
                    anyNonZero |= perSample[s] != 0;
                }
                if (!anyNonZero) {
                    continue;
                }
                LoConModule m = modules.get(i).module();
                if (uniform) {
                    branches.add(new LayerBranches.Branch(m, configs[configOfSample[0]][i], null));
                } else {
                    if (scope == null) {
                        throw new IllegalArgumentException("per-sample multipliers need a scope");
                    }
                    Tensor w = scope.fromHost(perSample, n).named(m.name() + " multipliers");
                    branches.add(new LayerBranches.Branch(m, 1.0, w));
                }
            }
            e.getKey().setAdapter(LayerBranches.of(branches));
        }
    }

    /** Removes every branch from the model's layers (the model runs without LoRAs; merged LoRAs stay). */
    public void detach() {
        for (AdaptableLayer l : byLayer.keySet()) {
            l.setAdapter(null);
        }
    }

    /** Detaches and releases the LoRA tensors. Idempotent. */
    @Override
    public void close() {
        detach();
        if (scope != null) {
            scope.close();
        }
    }

    @Override
    public String toString() {
        List<String> names = new ArrayList<>();
        for (Prepared p : prepared) {
            names.add(p.spec().name() + ":" + p.spec().strength() + (p.spec().vector() == null ? "" : ":" + p.spec().vector()));
        }
        return "LoRAs " + names + " (" + modules.size() + " modules)";
    }
}
