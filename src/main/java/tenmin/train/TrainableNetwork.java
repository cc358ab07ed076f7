package tenmin.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.lora.LoConModule;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.SdxlModels;
import tenmin.models.nn.AdaptableLayer;
import tenmin.train.optim.DeviceClybW;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.Param;
import tenmin.train.optim.ParamGroup;
import tenmin.train.save.StateTensor;

/**
 * The LoCon network being trained, seen from both sides of the host↔device boundary: the device tensors
 * the forward reads and backward writes gradients into ({@link LoConNetwork}), and the fp32 host
 * {@link Param}s the optimizer updates (trainer-spec §7.1: group "textencoder" = every TE1 and TE2 module,
 * group "unet" = every U-Net module). At each optimizer step the gradients go down to the host
 * ({@link #gradientsToHost}), the optimizer updates the host values, and the values go back up
 * ({@link #valuesToDevice}); or, after {@link #optimizeOnDevice}, the step runs on the device
 * ({@link #deviceStep}) and the host values are refreshed only when read (saves, training states).
 *
 * <p>Adapters on text encoder 1's last layer never receive gradient (its output is not used): their
 * parameters keep "no gradient" (PyTorch's {@code .grad is None}), so the optimizer skips them and they
 * do not enter the gradient-norm clip, as in sd-scripts (fixtures README Q4).
 */
public final class TrainableNetwork {
    /** Group names of the training state and logs. */
    public static final String TEXT_ENCODER_GROUP = "textencoder";
    public static final String UNET_GROUP = "unet";

    private final LoConNetwork network;
    private final List<ParamGroup> groups;
    private final Map<Tensor, Param> hostOf = new IdentityHashMap<>();
    private final Set<Tensor> withoutGradient = Collections.newSetFromMap(new IdentityHashMap<>());
    /** The optimizer on the device, or null while the host optimizer steps. */
    private DeviceClybW onDevice;
    /** True when the device values changed since the host copies were last refreshed. */
    private boolean hostValuesStale;

    private TrainableNetwork(LoConNetwork network, List<ParamGroup> groups, Set<Tensor> withoutGradient) {
        this.network = network;
        this.groups = List.copyOf(groups);
        this.withoutGradient.addAll(withoutGradient);
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                hostOf.put(deviceTensor(p.name()), p);
            }
        }
    }

    /**
     * The modules of LyCORIS {@code algo=locon preset=full} for {@code models} (trainer-spec §8.2–8.4),
     * initialised from {@code seed} (down Kaiming-uniform, up zeros, TE1 then TE2 then U-Net), attached,
     * with fp32 parameters in {@code scope}.
     *
     * @param ranks      linear/1x1 and k×k ranks and alphas
     * @param teModules  which text-encoder layers preset full wraps (264 or 88 on SDXL)
     * @param trainTe    create text-encoder modules ({@code --network_train_unet_only} turns this off)
     * @param trainUnet  create U-Net modules ({@code --network_train_text_encoder_only} turns this off)
     * @param teLr       base lr of the text-encoder group
     * @param unetLr     base lr of the U-Net group
     */
    public static TrainableNetwork create(SdxlModels models, LoConRanks ranks, LoConPreset.TextEncoderModules teModules,
                                          boolean trainTe, boolean trainUnet, double teLr, double unetLr, Scope scope,
                                          long seed) {
        List<LoConTarget> all = targets(models.unet().layers(), models.unet().moduleClasses(),
                models.textEncoders().te1().adaptableLayers(), models.textEncoders().te2().adaptableLayers(), ranks,
                teModules, trainTe, trainUnet);
        LoConNetwork net = LoConNetwork.create(all, scope, new Generator(seed));

        Set<AdaptableLayer> idle = Collections.newSetFromMap(new IdentityHashMap<>());
        idle.addAll(models.textEncoders().layersWithoutGradient());
        Set<Tensor> noGrad = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Param> teParams = new ArrayList<>();
        List<Param> unetParams = new ArrayList<>();
        for (LoConModule m : net.modules()) {
            boolean isTe = !m.name().startsWith(LoConPreset.UNET + "_");
            for (Tensor t : List.of(m.down(), m.up())) {
                Param p = new Param(t.name(), t.shape().dimsLong(), t.toHost());
                (isTe ? teParams : unetParams).add(p);
                if (idle.contains(m.layer())) {
                    noGrad.add(t);
                }
            }
        }
        List<ParamGroup> groups = new ArrayList<>();
        if (!teParams.isEmpty()) {
            groups.add(new ParamGroup(TEXT_ENCODER_GROUP, teLr, teParams));
        }
        if (!unetParams.isEmpty()) {
            groups.add(new ParamGroup(UNET_GROUP, unetLr, unetParams));
        }
        // the parameters change only at the optimizer step (valuesToDevice): their bf16 copies serve a whole window
        net.reuseCasts(true);
        return new TrainableNetwork(net, groups, noGrad);
    }

    /**
     * The modules preset {@code full} wraps, text encoders first (TE1, TE2), then the U-Net, in module order:
     * also computable on meta models (no weights) for the memory plan.
     *
     * @throws InputException when nothing would be trained
     */
    public static List<LoConTarget> targets(List<AdaptableLayer> unetLayers, Map<String, String> unetClasses,
                                            List<AdaptableLayer> te1Layers, List<AdaptableLayer> te2Layers,
                                            LoConRanks ranks, LoConPreset.TextEncoderModules teModules,
                                            boolean trainTe, boolean trainUnet) {
        List<LoConTarget> all = new ArrayList<>();
        if (trainTe) {
            LoConRanks linear = LoConRanks.linear(ranks.linearDim(), ranks.linearAlpha());
            all.addAll(LoConPreset.textEncoder(LoConPreset.TE1, te1Layers, teModules, linear));
            all.addAll(LoConPreset.textEncoder(LoConPreset.TE2, te2Layers, teModules, linear));
        }
        if (trainUnet) {
            all.addAll(LoConPreset.unet(unetLayers, unetClasses, ranks));
        }
        if (all.isEmpty()) {
            throw new InputException("no LoCon modules to train (check --network_train_unet_only/--network_train_text_encoder_only"
                    + " and --network_dim)");
        }
        return all;
    }

    private Tensor deviceTensor(String name) {
        for (Tensor t : network.parameters()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        throw new IllegalStateException("no LoCon parameter " + name);
    }

    public LoConNetwork network() {
        return network;
    }

    /** The optimizer's groups (text encoder first when present, then U-Net). */
    public List<ParamGroup> groups() {
        return groups;
    }

    /** The base lr of group {@code name}, or NaN when the group does not exist. */
    public double baseLr(String name) {
        for (ParamGroup g : groups) {
            if (g.name().equals(name)) {
                return g.baseLr();
            }
        }
        return Double.NaN;
    }

    /** Trainable values. */
    public long parameterCount() {
        return network.parameterCount();
    }

    /** Number of modules. */
    public int moduleCount() {
        return network.modules().size();
    }

    /**
     * Sync point: copies every accumulated device gradient into its host {@link Param} (marking it present),
     * except the parameters that never receive gradient, then zeroes the device gradients for the next window.
     */
    public void gradientsToHost() {
        List<Tensor> grads = new ArrayList<>();
        List<float[]> dst = new ArrayList<>();
        List<Param> reached = new ArrayList<>();
        for (Tensor t : network.parameters()) {
            Param p = hostOf.get(t);
            p.zeroGrad();
            if (!withoutGradient.contains(t)) {
                grads.add(t.grad());
                dst.add(p.grad());
                reached.add(p);
            }
        }
        if (!grads.isEmpty()) {
            grads.getFirst().backend().toHostAll(grads, dst);                     // one transfer on a device
        }
        for (Param p : reached) {
            p.markGrad();
        }
        for (Tensor t : network.parameters()) {
            t.zeroGrad();
        }
    }

    /** Sync point: uploads every host value (after the optimizer step) into its device parameter. */
    public void valuesToDevice() {
        network.dropCasts();
        List<Tensor> params = network.parameters();
        List<float[]> values = new ArrayList<>(params.size());
        for (Tensor t : params) {
            values.add(hostOf.get(t).value());
        }
        if (!params.isEmpty()) {
            params.getFirst().backend().copyFromHostAll(params, values);           // one transfer on a device
        }
    }

    /**
     * Moves the optimizer step to the device when it can run there ({@link DeviceClybW#supports}): the parameters
     * that receive gradients are packed into flat device buffers in {@code scope}, and from now on
     * {@link #deviceStep} replaces the host round trip. Returns false (nothing changed) when it cannot.
     */
    public boolean optimizeOnDevice(Optimizer optimizer, Scope scope) {
        List<List<Param>> params = new ArrayList<>();
        List<List<Tensor>> tensors = new ArrayList<>();
        for (ParamGroup g : groups) {
            List<Param> ps = new ArrayList<>();
            List<Tensor> ts = new ArrayList<>();
            for (Param p : g.params()) {
                Tensor t = deviceTensor(p.name());
                if (!withoutGradient.contains(t)) {
                    ps.add(p);
                    ts.add(t);
                }
            }
            params.add(ps);
            tensors.add(ts);
        }
        if (onDevice != null || !DeviceClybW.supports(optimizer, scope.backend(), params)) {
            return false;
        }
        onDevice = DeviceClybW.pack(optimizer, params, tensors, scope);
        network.dropCasts();
        return true;
    }

    /** The optimizer on the device, or null when the host optimizer steps. */
    public DeviceClybW deviceOptimizer() {
        return onDevice;
    }

    /**
     * The optimizer step on the device ({@link DeviceClybW#step}): clip, update, gradients zeroed. The host copies of
     * the values are refreshed when next read ({@link #weights}; {@link #snapshot} reads the device directly).
     *
     * @return the gradient norm before clipping (not finite: nothing was updated)
     */
    public double deviceStep(double[] lrs, double maxGradNorm) {
        double norm = onDevice.step(lrs, maxGradNorm);
        if (Double.isFinite(norm)) {
            network.dropCasts();
            hostValuesStale = true;
        }
        return norm;
    }

    /** Sync point when the device optimizer has stepped since the last call: the device values to the host copies. */
    public void valuesToHost() {
        if (!hostValuesStale) {
            return;
        }
        List<Tensor> params = network.parameters();
        List<float[]> values = new ArrayList<>(params.size());
        for (Tensor t : params) {
            values.add(hostOf.get(t).value());
        }
        params.getFirst().backend().toHostAll(params, values);                    // one transfer on a device
        hostValuesStale = false;
    }

    /** Clears the host gradients ("None") after the optimizer step. */
    public void clearHostGradients() {
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                p.zeroGrad();
            }
        }
    }

    /**
     * The network as saved (trainer-spec §9.2): per module {@code alpha} (0-d), {@code lora_up.weight},
     * {@code lora_down.weight}, in module order (TE1, TE2, U-Net), with values of its own that later steps do not
     * change (a writer thread's copy): copied into {@code buffers} (one array per tensor name, made at the first call
     * and reused, so a caller must be done with the previous snapshot). After a device step they come straight from
     * the device: packed there now, downloaded by {@link Snapshot#ready} (run it, on any thread, before reading the
     * values: the loop's thread goes on meanwhile); else from the host values, on all cores, before this returns.
     */
    public Snapshot snapshot(Map<String, float[]> buffers) {
        List<Tensor> params = network.parameters();
        List<float[]> dst = new ArrayList<>(params.size());
        for (Tensor t : params) {
            float[] b = buffers.computeIfAbsent(t.name(), k -> new float[Math.toIntExact(t.numel())]);
            if (b.length != t.numel()) {
                throw new IllegalArgumentException("snapshot buffer " + t.name() + " has " + b.length + " values, the"
                        + " tensor " + t.numel());
            }
            dst.add(b);
        }
        Runnable ready = () -> { };
        if (hostValuesStale) {
            ready = params.getFirst().backend().toHostLater(params, dst);       // one transfer on a device
            Runnable download = ready;
            Map<String, Double> scalars = scalarsOf(network);                    // as they are now
            ready = () -> {
                download.run();
                withScalars(scalars, buffers);
            };
        } else {
            java.util.stream.IntStream.range(0, params.size()).parallel().forEach(i -> {
                float[] v = hostOf.get(params.get(i)).value();
                System.arraycopy(v, 0, dst.get(i), 0, v.length);
            });
            withScalars(scalarsOf(network), buffers);
        }
        List<StateTensor> out = new ArrayList<>();
        for (LoConModule m : network.modules()) {
            out.add(new StateTensor(m.name() + ".alpha", new long[0], new float[] {(float) m.alpha()}));
            Param up = hostOf.get(m.up());
            Param down = hostOf.get(m.down());
            out.add(new StateTensor(up.name(), up.shape(), buffers.get(up.name())));
            out.add(new StateTensor(down.name(), down.shape(), buffers.get(down.name())));
        }
        return new Snapshot(out, ready);
    }

    /**
     * What one max-norm pass did, as kohya logs it: modules scaled, and the mean and largest norm of every module's
     * delta after the pass; all 0 when none was scaled (LyCORIS returns {@code 0, 0, 0} then).
     */
    public record MaxNorm(int keysScaled, double averageNorm, double largestNorm) {
        /** Nothing scaled. */
        public static final MaxNorm NONE = new MaxNorm(0, 0, 0);
    }

    /**
     * Max-norm regularisation ({@code --scale_weight_norms}, LyCORIS 3.1 {@code apply_max_norm}) on the current values:
     * each module's delta norm ‖scalar · (alpha/r) · up·down‖_F (from the r×r Gram matrices, ‖UD‖² = Σ UᵀU ⊙ DDᵀ, on
     * the device; one download), and where it exceeds {@code maxNorm} the module's scalar is multiplied by
     * {@code maxNorm / norm}. LyCORIS computes the norm with the module in training mode, so with rank dropout its norm
     * sees a random rank mask; here it is the delta's own norm.
     */
    public MaxNorm applyMaxNorm(double maxNorm) {
        List<LoConModule> modules = network.modules();
        List<float[]> squares = new ArrayList<>();
        try (Scope s = network.parameters().getFirst().scope().child("max norm")) {
            tenmin.engine.api.Backend be = s.backend();
            List<Tensor> sums = new ArrayList<>();
            for (LoConModule m : modules) {
                int r = m.rank();
                Tensor up = be.reshape(s, m.up(), tenmin.engine.api.Shape.of(m.up().dim(0), r));              // (out, r)
                Tensor down = be.reshape(s, m.down(), tenmin.engine.api.Shape.of(r, (int) (m.down().numel() / r))); // (r, K)
                Tensor g1 = be.matmul(s, up, up, true, false);                                              // (r, r)
                Tensor g2 = be.matmul(s, down, down, false, true);                                          // (r, r)
                sums.add(be.sum(s, be.mul(s, g1, g2), new int[] {0, 1}, false));                           // ()
                squares.add(new float[1]);
            }
            be.toHostAll(sums, squares);                                                                    // sync point
        }
        int scaled = 0;
        double total = 0;
        double largest = 0;
        for (int i = 0; i < modules.size(); i++) {
            LoConModule m = modules.get(i);
            double norm = Math.sqrt(Math.max(0, squares.get(i)[0])) * m.scale() * m.scalar();
            double clamped = Math.max(norm, maxNorm / 2);
            double desired = Math.min(clamped, maxNorm);
            double ratio = desired / clamped;
            if (clamped != desired) {
                m.setScalar(m.scalar() * ratio);
                scaled++;
            }
            total += norm * ratio;
            largest = Math.max(largest, norm * ratio);
        }
        return scaled == 0 ? MaxNorm.NONE : new MaxNorm(scaled, total / modules.size(), largest);
    }

    /** Training-state info key of the modules' scalars (max-norm regularisation), absent when all are 1. */
    public static final String SCALARS_INFO = "locon_scalars";

    /** The scalars as training-state info: {@code SCALARS_INFO} → "module value" lines; empty when all are 1. */
    public Map<String, String> scalarInfo() {
        StringBuilder sb = new StringBuilder();
        for (LoConModule m : network.modules()) {
            if (m.scalar() != 1) {
                sb.append(m.name()).append(' ').append(m.scalar()).append('\n');
            }
        }
        return sb.isEmpty() ? Map.of() : Map.of(SCALARS_INFO, sb.toString());
    }

    /** Sets the scalars a training state recorded ({@link #scalarInfo}); the others stay 1. */
    public void restoreScalars(Map<String, String> info, String source) {
        String text = info.get(SCALARS_INFO);
        if (text == null) {
            return;
        }
        for (String line : text.split("\n")) {
            String[] parts = line.split(" ");
            LoConModule m = parts.length == 2 ? network.module(parts[0]) : null;
            if (m == null) {
                throw new InputException(source + ": a scalar for an unknown LoCon module: '" + line + "'");
            }
            m.setScalar(Double.parseDouble(parts[1]));
        }
    }

    /** The up tensor name → scalar of the modules whose scalar is not 1 (max-norm regularisation). */
    private static Map<String, Double> scalarsOf(LoConNetwork network) {
        Map<String, Double> out = new LinkedHashMap<>();
        for (LoConModule m : network.modules()) {
            if (m.scalar() != 1) {
                out.put(m.up().name(), m.scalar());
            }
        }
        return out;
    }

    /** The saved form of up, LyCORIS's {@code lora_up.weight * scalar}: the buffers of scaled modules multiplied. */
    private static void withScalars(Map<String, Double> scalars, Map<String, float[]> buffers) {
        scalars.forEach((name, scalar) -> LoConNetwork.upWithScalar(buffers.get(name), scalar));
    }

    /**
     * What {@link #snapshot} gives: the tensors as saved, and what fills their values (once, on any thread; they
     * must not be read before it returned).
     */
    public record Snapshot(List<StateTensor> tensors, Runnable ready) {
    }

    /** The trainable tensors only (down and up of every module), host values: what a training state keeps. */
    public List<StateTensor> weights() {
        valuesToHost();
        List<StateTensor> out = new ArrayList<>();
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                out.add(new StateTensor(p.name(), p.shape(), p.value()));
            }
        }
        return out;
    }

    /**
     * Restores saved weights (from a training state) into the host values and the device parameters; every
     * trainable tensor must be present with its shape.
     *
     * @throws InputException naming {@code source} and the first missing or mis-shaped tensor
     */
    public void restore(List<StateTensor> saved, String source) {
        Map<String, StateTensor> byName = new LinkedHashMap<>();
        for (StateTensor t : saved) {
            byName.put(t.name(), t);
        }
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                StateTensor t = byName.get(p.name());
                if (t == null) {
                    throw new InputException(source + ": has no weights for " + p.name()
                            + " (was it saved by a run with other network settings?)");
                }
                if (!java.util.Arrays.equals(t.shape(), p.shape())) {
                    throw new InputException(source + ": " + p.name() + " has shape " + java.util.Arrays.toString(t.shape())
                            + ", this network has " + java.util.Arrays.toString(p.shape()));
                }
                System.arraycopy(t.values(), 0, p.value(), 0, p.numel());
            }
        }
        hostValuesStale = false;
        if (byName.size() != hostOf.size()) {
            throw new InputException(source + ": holds " + byName.size() + " LoCon tensors, this network has "
                    + hostOf.size() + " (other network settings?)");
        }
        valuesToDevice();
    }

    /**
     * Starts from the weights of an existing LoCon/LoRA file ({@code --network_weights}; LyCORIS's
     * {@code load_weights}, a non-strict {@code load_state_dict}): each down and up tensor of this network that the
     * file holds replaces the initial values (F16/BF16/F32, widened to fp32); the others keep theirs, and the file's
     * tensors this network lacks are left unread — both listed by the returned summary. Nothing is changed when
     * the file does not fit: a tensor of another shape (another rank), an alpha other than this run's (LyCORIS
     * would keep this run's scale and save the file's alpha: a silently different LoRA), or no tensor of this
     * network at all is an error naming the file.
     *
     * @return a one-line summary: how many tensors were loaded, which were missing and which unread
     * @throws InputException naming {@code file} and the first tensor that does not fit
     */
    public String loadWeights(java.nio.file.Path file) {
        try (tenmin.formats.SafetensorsFile st = tenmin.formats.SafetensorsFile.open(file)) {
            java.util.Set<String> known = new java.util.HashSet<>();
            for (LoConModule m : network.modules()) {
                String alphaKey = m.name() + ".alpha";
                known.add(alphaKey);
                if (st.contains(alphaKey)) {
                    double alpha = st.readScalar(alphaKey);
                    if (!(Math.abs(alpha - m.alpha()) <= 1e-3 * Math.max(1, Math.abs(m.alpha())))) {
                        throw new InputException(file + ": " + alphaKey + " is " + alpha + ", this run's "
                                + (m.down().shape().rank() == 4 && m.down().shape().dim(2) > 1 ? "conv_alpha" : "network_alpha")
                                + " is " + m.alpha() + "; give the alphas the file was trained with");
                    }
                }
            }
            List<Param> present = new ArrayList<>();
            List<String> missing = new ArrayList<>();
            for (ParamGroup g : groups) {
                for (Param p : g.params()) {
                    known.add(p.name());
                    if (!st.contains(p.name())) {
                        missing.add(p.name());
                        continue;
                    }
                    long[] shape = st.info(p.name()).shape();
                    if (!java.util.Arrays.equals(shape, p.shape())) {
                        throw new InputException(file + ": " + p.name() + " has shape " + java.util.Arrays.toString(shape)
                                + " (rank " + rank(p.name(), shape) + "), this run's network has "
                                + java.util.Arrays.toString(p.shape()) + " (rank " + rank(p.name(), p.shape())
                                + "); give the --network_dim / conv_dim the file was trained with");
                    }
                    present.add(p);
                }
            }
            List<String> unread = new ArrayList<>();
            for (String k : st.names()) {
                if (!known.contains(k)) {
                    unread.add(k);
                }
            }
            if (present.isEmpty()) {
                throw new InputException(file + ": holds none of this network's " + hostOf.size() + " LoCon tensors"
                        + (unread.isEmpty() ? "" : " (it has " + names(unread) + ")") + "; is it a LoRA for SDXL?");
            }
            valuesToHost();
            for (Param p : present) {
                st.readFloats(p.name(), p.value(), 0);
                st.release(p.name());
            }
            hostValuesStale = false;
            valuesToDevice();
            return present.size() + " of " + hostOf.size() + " LoCon tensors loaded"
                    + (missing.isEmpty() ? "" : "; " + missing.size() + " not in the file keep their initial values ("
                    + names(missing) + ")")
                    + (unread.isEmpty() ? "" : "; " + unread.size() + " tensors of the file are not part of this network ("
                    + names(unread) + ")");
        }
    }

    /** The rank of a down (rank, in, ...) or up (out, rank, ...) tensor. */
    private static long rank(String name, long[] shape) {
        return name.endsWith(".lora_down.weight") || shape.length < 2 ? shape[0] : shape[1];
    }

    private static String names(List<String> names) {
        int shown = Math.min(3, names.size());
        return String.join(", ", names.subList(0, shown)) + (names.size() > shown ? ", ..." : "");
    }
}
