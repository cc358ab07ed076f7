package tenmin.lora;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.models.nn.AdaptableLayer;

/**
 * A LyCORIS LoCon network: one {@link LoConModule} (bypass branch) per {@link LoConTarget}, attached to
 * its layer's adapter slot, with fp32 parameters that require gradients.
 *
 * <pre>{@code
 * List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), LoConRanks.recipe());
 * LoConNetwork net = LoConNetwork.create(targets, modelScope, new Generator(seed)); // attached
 * ... forward, backward: net.parameters() hold .grad() ...
 * net.save(path, StDType.F16, metadata);
 * }</pre>
 *
 * <p>File format (trainer-spec §8.7, §9.2; what ComfyUI, A1111/Forge and kohya read): per module
 * {@code <name>.lora_down.weight}, {@code <name>.lora_up.weight} and a 0-d {@code <name>.alpha}, every
 * tensor in the requested save dtype, laid out by {@link SafetensorsWriter}.
 */
public final class LoConNetwork {
    private static final String DOWN = ".lora_down.weight";
    private static final String UP = ".lora_up.weight";
    private static final String ALPHA = ".alpha";
    private static final int NAMES_SHOWN = 5;

    private final List<LoConModule> modules;
    private boolean attached;

    private LoConNetwork(List<LoConModule> modules) {
        this.modules = List.copyOf(modules);
    }

    /**
     * New modules for {@code targets}, initialised as LyCORIS does (trainer-spec §8.4): down
     * Kaiming-uniform U(−1/√fanIn, +1/√fanIn) drawn from {@code gen} module by module in target order, up
     * zeros (so the network starts as the identity). Parameters are F32, owned by {@code scope}, require
     * gradients, and are attached to their layers.
     */
    public static LoConNetwork create(List<LoConTarget> targets, Scope scope, Generator gen) {
        checkUnique(targets);
        List<LoConModule> modules = new ArrayList<>();
        for (LoConTarget t : targets) {
            double bound = 1.0 / Math.sqrt(t.downFanIn());
            Tensor down = scope.randUniform(t.downShape(), DType.F32, -bound, bound, gen).named(t.name() + DOWN);
            Tensor up = scope.zeros(t.upShape(), DType.F32).named(t.name() + UP);
            modules.add(module(t, down, up, t.alpha()));
        }
        LoConNetwork net = new LoConNetwork(modules);
        net.attach();
        return net;
    }

    /**
     * Loads {@code file} strictly into modules for {@code targets}: every target's down, up and 0-d alpha
     * must be present with exactly the target's shapes, and the file must hold nothing else. Values in
     * F16/BF16/F32 become F32 parameters in {@code scope} (requiring gradients, to resume training); alpha
     * is taken from the file. The network is attached.
     *
     * @throws InputException one line naming the file and the missing, unknown or mis-shaped modules or keys
     */
    public static LoConNetwork load(Path file, List<LoConTarget> targets, Scope scope) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            return load(st, targets, scope);
        }
    }

    /** {@link #load(Path, List, Scope)} from an open file. */
    public static LoConNetwork load(SafetensorsFile file, List<LoConTarget> targets, Scope scope) {
        checkUnique(targets);
        checkKeys(file, targets);
        List<LoConModule> modules = new ArrayList<>();
        try (Scope staging = scope.child("lora load")) {
            for (LoConTarget t : targets) {
                double alpha = file.readScalar(t.name() + ALPHA);
                if (!Double.isFinite(alpha)) {
                    throw new InputException(file.path() + ": \"" + t.name() + ALPHA + "\" is " + alpha + ", not a finite number");
                }
                Tensor down = read(file, t.name() + DOWN, t.downShape(), staging);
                Tensor up = read(file, t.name() + UP, t.upShape(), staging);
                modules.add(module(t, down, up, alpha));
            }
            for (LoConModule m : modules) {   // complete: move the parameters out of the staging scope
                scope.adopt(m.down());
                scope.adopt(m.up());
            }
        }
        LoConNetwork net = new LoConNetwork(modules);
        net.attach();
        return net;
    }

    /**
     * Loads a LoCon/LoRA file of any ranks (one made elsewhere, for sampling or merging): the modules are
     * the {@code candidates} whose names the file has, each with the rank of the file's {@code lora_down};
     * the rest of the check is {@link #load(Path, List, Scope)}'s (a module the candidates lack, a tensor
     * of another shape or an unsupported kind is an error naming it).
     */
    public static LoConNetwork loadMatching(Path file, List<LoConTarget> candidates, Scope scope) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            List<LoConTarget> present = new ArrayList<>();
            for (LoConTarget t : candidates) {
                String down = t.name() + DOWN;
                if (st.contains(down) && st.info(down).rank() >= 1) {
                    int rank = (int) st.info(down).dim(0);
                    if (rank < 1) {
                        throw new InputException(file + ": \"" + down + "\" has rank 0");
                    }
                    double alpha = st.contains(t.name() + ALPHA) ? st.readScalar(t.name() + ALPHA) : rank;
                    present.add(new LoConTarget(t.name(), t.layer(), rank, alpha));
                }
            }
            return load(st, present, scope);
        }
    }

    private static Tensor read(SafetensorsFile file, String key, Shape shape, Scope scope) {
        Tensor t = scope.fromHost(file.readFloats(key), shape, DType.F32).named(key);
        file.release(key);
        return t;
    }

    private static LoConModule module(LoConTarget t, Tensor down, Tensor up, double alpha) {
        down.requireGrad();
        up.requireGrad();
        return new LoConModule(t.name(), t.layer(), down, up, alpha);
    }

    private static void checkUnique(List<LoConTarget> targets) {
        Set<String> names = new LinkedHashSet<>();
        Set<AdaptableLayer> layers = Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (LoConTarget t : targets) {
            if (!names.add(t.name()) || !layers.add(t.layer())) {
                throw new IllegalArgumentException("LoCon module " + t.name() + " (layer " + t.layer().path() + ") listed twice");
            }
        }
    }

    /** Validates the file's key set and shapes against the targets before anything is allocated. */
    private static void checkKeys(SafetensorsFile file, List<LoConTarget> targets) {
        Map<String, Shape> expected = new LinkedHashMap<>();
        for (LoConTarget t : targets) {
            expected.put(t.name() + DOWN, t.downShape());
            expected.put(t.name() + UP, t.upShape());
            expected.put(t.name() + ALPHA, Shape.scalar());
        }
        Set<String> missingModules = new LinkedHashSet<>();
        for (String key : expected.keySet()) {
            if (!file.contains(key)) {
                missingModules.add(moduleOf(key));
            }
        }
        Set<String> targetNames = new LinkedHashSet<>();
        targets.forEach(t -> targetNames.add(t.name()));
        Set<String> unknownModules = new LinkedHashSet<>();
        List<String> unknownKeys = new ArrayList<>();
        for (String key : file.names()) {
            if (!expected.containsKey(key)) {
                if (targetNames.contains(moduleOf(key))) {
                    unknownKeys.add(key);
                } else {
                    unknownModules.add(moduleOf(key));
                }
            }
        }
        if (!missingModules.isEmpty()) {
            throw new InputException(file.path() + ": " + missingModules.size() + " of " + targets.size()
                    + " LoCon modules missing: " + names(missingModules)
                    + (unknownModules.isEmpty() ? "" : "; file has other modules: " + names(unknownModules))
                    + " (was it trained for this model and module set?)");
        }
        if (!unknownModules.isEmpty()) {
            throw new InputException(file.path() + ": " + unknownModules.size() + " modules this network does not have: "
                    + names(unknownModules) + " (was it trained for this model and module set?)");
        }
        if (!unknownKeys.isEmpty()) {
            throw new InputException(file.path() + ": unsupported LoCon tensors " + names(unknownKeys)
                    + " (only lora_down/lora_up/alpha: no Tucker, DoRA or scalar)");
        }
        for (Map.Entry<String, Shape> e : expected.entrySet()) {
            TensorInfo info = file.info(e.getKey());
            Shape found = Shape.of(info.shape());
            if (!found.equals(e.getValue())) {
                throw new InputException(file.path() + ": \"" + e.getKey() + "\" has shape " + found + ", expected "
                        + e.getValue() + " (another rank or model?)");
            }
            if (!info.dtype().isFloat()) {
                throw new InputException(file.path() + ": \"" + e.getKey() + "\" has dtype " + info.dtype()
                        + ", expected F16, BF16 or F32");
            }
        }
    }

    private static String moduleOf(String key) {
        int dot = key.indexOf('.');
        return dot < 0 ? key : key.substring(0, dot);
    }

    private static String names(Set<String> names) {
        return names(new ArrayList<>(names));
    }

    private static String names(List<String> names) {
        List<String> shown = names.subList(0, Math.min(NAMES_SHOWN, names.size()));
        String more = names.size() > NAMES_SHOWN ? " and " + (names.size() - NAMES_SHOWN) + " more" : "";
        return String.join(", ", shown) + more;
    }

    // ---- use -----------------------------------------------------------------------------------

    /** Puts every module into its layer's adapter slot. */
    public void attach() {
        if (attached) {
            return;
        }
        for (LoConModule m : modules) {
            if (m.layer().adapter() != null) {
                throw new IllegalStateException("layer " + m.layer().path() + " already has an adapter; detach the other network first");
            }
        }
        for (LoConModule m : modules) {
            m.layer().setAdapter(m);
        }
        attached = true;
    }

    /** Removes the modules from their layers (the model runs without the LoCon). */
    public void detach() {
        for (LoConModule m : modules) {
            if (m.layer().adapter() == m) {
                m.layer().setAdapter(null);
            }
        }
        attached = false;
    }

    public boolean isAttached() {
        return attached;
    }

    /** The modules in network order (text encoders, then U-Net, as the targets were given). */
    public List<LoConModule> modules() {
        return modules;
    }

    /** The module named {@code name}, or null. */
    public LoConModule module(String name) {
        for (LoConModule m : modules) {
            if (m.name().equals(name)) {
                return m;
            }
        }
        return null;
    }

    /** Every trainable tensor (down, up per module), each named by its file key and holding its {@code grad()}. */
    public List<Tensor> parameters() {
        List<Tensor> out = new ArrayList<>();
        for (LoConModule m : modules) {
            out.add(m.down());
            out.add(m.up());
        }
        return out;
    }

    /** Number of trainable values. */
    public long parameterCount() {
        long n = 0;
        for (LoConModule m : modules) {
            n += m.down().numel() + m.up().numel();
        }
        return n;
    }

    /** Sets the branch strength of every module (1 in training). */
    public void setMultiplier(double multiplier) {
        for (LoConModule m : modules) {
            m.setMultiplier(multiplier);
        }
    }

    /** {@link LoConModule#reuseCasts} on every module. */
    public void reuseCasts(boolean on) {
        for (LoConModule m : modules) {
            m.reuseCasts(on);
        }
    }

    /** {@link LoConModule#setDropout} on every module (LyCORIS gives all modules the same three). */
    public void setDropout(LoConDropout dropout) {
        for (LoConModule m : modules) {
            m.setDropout(dropout);
        }
    }

    /** {@link LoConModule#dropCasts} on every module: call after writing the parameters. */
    public void dropCasts() {
        for (LoConModule m : modules) {
            m.dropCasts();
        }
    }

    /** Sets every parameter's gradient to zero (start of an accumulation window). */
    public void zeroGrad() {
        for (Tensor p : parameters()) {
            p.zeroGrad();
        }
    }

    // ---- save ----------------------------------------------------------------------------------

    /**
     * File keys in the reference's state-dict order (module order; per module alpha, lora_up, lora_down:
     * trainer-spec §9.2), the order {@code sshs_model_hash} is computed in; values via {@link #toHost(String)},
     * shapes via {@link #shape(String)}. The file itself is laid out by {@link SafetensorsWriter}'s rules.
     */
    public List<String> stateDictKeys() {
        List<String> keys = new ArrayList<>();
        for (LoConModule m : modules) {
            keys.add(m.name() + ALPHA);
            keys.add(m.name() + UP);
            keys.add(m.name() + DOWN);
        }
        return keys;
    }

    /** The shape of state-dict tensor {@code key} ({@code []} for an alpha). */
    public long[] shape(String key) {
        LoConModule m = moduleOfKey(key);
        return key.endsWith(ALPHA) ? new long[0] : (key.endsWith(UP) ? m.up() : m.down()).shape().dimsLong();
    }

    /**
     * The fp32 values of state-dict tensor {@code key}, copied to the host (a sync point); {@code lora_up} carries the
     * module's {@link LoConModule#scalar()} as LyCORIS saves it.
     */
    public float[] toHost(String key) {
        LoConModule m = moduleOfKey(key);
        if (key.endsWith(ALPHA)) {
            return new float[] {(float) m.alpha()};
        }
        return key.endsWith(UP) ? upWithScalar(m, m.up().toHost()) : m.down().toHost();
    }

    /** {@code up} (host values of m's up) times m's scalar, in place (LyCORIS's {@code lora_up.weight * scalar}). */
    public static float[] upWithScalar(LoConModule m, float[] up) {
        return upWithScalar(up, m.scalar());
    }

    /** {@code up} times {@code scalar}, in place; unchanged for 1. */
    public static float[] upWithScalar(float[] up, double scalar) {
        if (scalar != 1) {
            for (int i = 0; i < up.length; i++) {
                up[i] = (float) (up[i] * scalar);
            }
        }
        return up;
    }

    private LoConModule moduleOfKey(String key) {
        LoConModule m = module(moduleOf(key));
        if (m == null || !(key.endsWith(ALPHA) || key.endsWith(UP) || key.endsWith(DOWN))
                || key.length() != m.name().length() + (key.endsWith(ALPHA) ? ALPHA : key.endsWith(UP) ? UP : DOWN).length()) {
            throw new IllegalArgumentException("no tensor " + key + " in this network");
        }
        return m;
    }

    /**
     * Writes the network atomically in the kohya/LyCORIS key format with every tensor in {@code dtype}
     * (F16, BF16 or F32; {@code --save_precision}) and {@code metadata} as {@code __metadata__}. Tensor
     * data is downloaded one tensor at a time while writing.
     */
    public void save(Path file, StDType dtype, Map<String, String> metadata) throws IOException {
        if (dtype != StDType.F16 && dtype != StDType.BF16 && dtype != StDType.F32) {
            throw new IllegalArgumentException("LoCon save dtype must be F16, BF16 or F32, got " + dtype);
        }
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(metadata);
        for (LoConModule m : modules) {
            w.addFloats(m.name() + ALPHA, dtype, new long[0], new float[] {(float) m.alpha()});
            Tensor up = m.up();
            w.add(m.name() + UP, dtype, up.shape().dimsLong(),
                    out -> SafetensorsWriter.writeFloats(out, upWithScalar(m, up.toHost()), dtype));
            addTensor(w, m.down(), m.name() + DOWN, dtype);
        }
        w.write(file);
    }

    private static void addTensor(SafetensorsWriter w, Tensor t, String key, StDType dtype) {
        w.add(key, dtype, t.shape().dimsLong(), out -> SafetensorsWriter.writeFloats(out, t.toHost(), dtype));
    }
}
