package tenmin.train.optim;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.Switch;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * {@link ClybW} (and LodeW) on the device, with the global gradient clip before it: the optimizer step of
 * trainer-spec §2 where the parameters live, instead of gradients down, the host update and values back up (on
 * an H100 machine 417 ms of host work per step for the recipe's 120 million values, 8 % of the run).
 *
 * <p>Layout: {@link #pack} moves each group's parameters (fp32) into one flat buffer and their gradients into
 * another ({@link Backend#relocate}: the parameter tensors stay the same objects, now views), ordered so that
 * parameters of the same shape are adjacent. The per-row statistics (centralisation, normalisation) then run
 * once per distinct shape on a (k, rows, cols) view of the k gradients of that shape, and the moment and
 * parameter updates once per group on the flat buffers: a few hundred device ops per step for thousands of
 * tensors. The moments ({@code ema}, {@code ema_squared}) are flat buffers of the same layout, created at the
 * first step as the reference does. Only for a backend that {@link Backend#canAlias}.
 *
 * <p>The arithmetic is ClybW's in float32, in another order than the host's exact replica of PyTorch's CPU
 * kernels (reductions, {@code addcmul} as a product and an add): results agree with {@link ClybW} to float
 * rounding, not bit for bit. The state exports to and imports from the host optimizer's format
 * ({@link OptimizerState}), so training states move between the two.
 */
public final class DeviceClybW {
    /** Environment variable: {@code 0} keeps the optimizer step on the host. */
    public static final String ENV = "TENMIN_DEVICE_OPTIMIZER";
    /** System property overriding {@link #ENV} (tests). */
    public static final String PROPERTY = "tenmin.device_optimizer";

    private static final Switch SWITCH = new Switch(PROPERTY, ENV);

    /** False when {@link #PROPERTY} or else {@link #ENV} is {@code 0}. */
    public static boolean enabled() {
        return SWITCH.on();
    }

    /** One parameter group on the device. */
    private static final class Packed {
        final List<Param> params;
        final long[] offsets;
        final long numel;
        final Tensor values;
        final Tensor grads;
        /** Per distinct shape, its k gradients viewed as (k, rows, cols): rows = dim 0, cols = the rest. */
        final List<Tensor> runs;
        Tensor ema;
        Tensor emaSquared;
        long step;

        Packed(List<Param> params, long[] offsets, Tensor values, Tensor grads, List<Tensor> runs) {
            this.params = params;
            this.offsets = offsets;
            this.numel = offsets[params.size()];
            this.values = values;
            this.grads = grads;
            this.runs = runs;
        }
    }

    private final ClybW host;
    private final ClybW.Hyper h;
    private final Scope scope;
    private final List<Packed> groups;

    private DeviceClybW(ClybW host, Scope scope, List<Packed> groups) {
        this.host = host;
        this.h = host.hyper();
        this.scope = scope;
        this.groups = groups;
    }

    /**
     * Moment buffers per trainable value that a run with {@code optimizerType} ({@link Optimizers#canonicalType} names)
     * keeps on {@code device}: 2 for ClybW and LodeW on a GPU (when {@link #enabled}) with optimizer steps
     * ({@code accumulation} > 0), else 0 (on the host, or on the CPU where host and device memory are one).
     */
    public static int plannedSlots(String optimizerType, Device device, int accumulation) {
        boolean clybw = "ClybW".equals(optimizerType) || "LodeW".equals(optimizerType);
        return clybw && accumulation > 0 && device.kind() != Device.Kind.CPU && enabled() ? 2 : 0;
    }

    /** True for the optimizers this class runs: ClybW and LodeW. */
    public static boolean supportsType(Optimizer optimizer) {
        return optimizer instanceof ClybW;
    }

    /**
     * True when {@code optimizer} can run on the device for these parameters: a ClybW-family optimizer, a backend
     * that aliases storage, and every parameter of rank 2 or more (LoCon's linear and conv matrices).
     */
    public static boolean supports(Optimizer optimizer, Backend backend, List<List<Param>> params) {
        if (!supportsType(optimizer) || !backend.canAlias()) {
            return false;
        }
        for (List<Param> g : params) {
            for (Param p : g) {
                if (p.rank() < 2 || p.numel() == 0) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * Moves the parameters of each group (host {@link Param}s with their device tensors, which hold their
     * gradients) into flat device buffers in {@code scope} and returns the optimizer over them. The groups must be
     * what {@link #step}'s learning rates are given for, in order; a group may be empty.
     *
     * @param optimizer the host optimizer whose hyper-parameters and names this one takes
     * @param params    per group, the parameters that receive gradients
     * @param tensors   per group, their device tensors (fp32, requiring gradients), in the same order
     */
    public static DeviceClybW pack(Optimizer optimizer, List<List<Param>> params, List<List<Tensor>> tensors,
                                   Scope scope) {
        if (!supports(optimizer, scope.backend(), params)) {
            throw new IllegalArgumentException(optimizer.type() + " cannot run on the " + scope.backend().name()
                    + " backend's device for these parameters");
        }
        List<Packed> packed = new ArrayList<>();
        for (int g = 0; g < params.size(); g++) {
            packed.add(packGroup(params.get(g), tensors.get(g), scope));
        }
        return new DeviceClybW((ClybW) optimizer, scope, packed);
    }

    private static Packed packGroup(List<Param> params, List<Tensor> tensors, Scope scope) {
        if (params.size() != tensors.size()) {
            throw new IllegalArgumentException(params.size() + " parameters but " + tensors.size() + " tensors");
        }
        // same shapes adjacent, first appearance first
        Map<String, List<Integer>> byShape = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            Param p = params.get(i);
            Tensor t = tensors.get(i);
            if (!Arrays.equals(p.shape(), t.shape().dimsLong()) || t.dtype() != DType.F32 || t.grad() == null) {
                throw new IllegalArgumentException(p.name() + ": the device tensor " + t.describe()
                        + " is not its fp32 parameter with a gradient");
            }
            byShape.computeIfAbsent(Arrays.toString(p.shape()), k -> new ArrayList<>()).add(i);
        }
        List<Param> order = new ArrayList<>();
        List<Tensor> orderTensors = new ArrayList<>();
        for (List<Integer> same : byShape.values()) {
            for (int i : same) {
                order.add(params.get(i));
                orderTensors.add(tensors.get(i));
            }
        }
        long[] offsets = new long[order.size() + 1];
        for (int i = 0; i < order.size(); i++) {
            offsets[i + 1] = offsets[i] + order.get(i).numel();
        }
        if (offsets[order.size()] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a parameter group of " + offsets[order.size()] + " values is too large");
        }
        Backend be = scope.backend();
        Shape flat = Shape.of((int) offsets[order.size()]);
        Tensor values = scope.zeros(flat, DType.F32).named("optimizer values");
        Tensor grads = scope.zeros(flat, DType.F32).named("optimizer gradients");
        for (int i = 0; i < order.size(); i++) {
            be.relocate(orderTensors.get(i), values, offsets[i]);
            be.relocate(orderTensors.get(i).grad(), grads, offsets[i]);
        }
        List<Tensor> runs = new ArrayList<>();
        int i = 0;
        for (List<Integer> same : byShape.values()) {
            Param first = order.get(i);
            int rows = first.rows();
            int cols = first.numel() / rows;
            runs.add(be.viewRange(scope, grads, offsets[i], Shape.of(same.size(), rows, cols)));
            i += same.size();
        }
        return new Packed(List.copyOf(order), offsets, values, grads, runs);
    }

    /** The host optimizer this one mirrors (its type, metadata name and slot names). */
    public Optimizer hostOptimizer() {
        return host;
    }

    /** Values packed, over all groups. */
    public long numel() {
        long n = 0;
        for (Packed p : groups) {
            n += p.numel;
        }
        return n;
    }

    /**
     * One optimizer step: the global L2 norm of all gradients (one small download: the only sync), and, when it is
     * finite, clipping to {@code maxGradNorm} ({@code g · min(1, max / (norm + 1e-6))}; 0 or less: none) and the
     * ClybW update of every group with its learning rate. The gradients are zero afterwards (the next accumulation
     * window), whether or not the step was taken.
     *
     * @return the norm before clipping (not finite: nothing was updated)
     */
    public double step(double[] lrs, double maxGradNorm) {
        if (lrs.length != groups.size()) {
            throw new IllegalArgumentException(groups.size() + " groups but " + lrs.length + " learning rates");
        }
        Backend be = scope.backend();
        try (Scope s = scope.child("optimizer step")) {
            double norm = Math.sqrt(sumOfSquares(s));
            if (Double.isFinite(norm)) {
                double coef = maxGradNorm / (norm + 1e-6);
                for (int g = 0; g < groups.size(); g++) {
                    Packed p = groups.get(g);
                    if (p.numel == 0) {
                        continue;
                    }
                    if (maxGradNorm > 0 && coef < 1) {
                        be.scaleInto(p.grads, (float) coef);
                    }
                    update(s, p, lrs[g]);
                }
            }
            for (Packed p : groups) {
                if (p.numel > 0) {
                    be.fillInto(p.grads, 0.0);
                }
            }
            return norm;
        }
    }

    /** Σ g² over every group, each group's sum on the device in fp32, added on the host in double. */
    private double sumOfSquares(Scope s) {
        Backend be = s.backend();
        List<Tensor> sums = new ArrayList<>();
        for (Packed p : groups) {
            if (p.numel > 0) {
                Tensor sq = be.mul(s, p.grads, p.grads);
                sums.add(be.reshape(s, be.sum(s, sq, new int[0], false), Shape.of(1)));
                sq.close();
            }
        }
        if (sums.isEmpty()) {
            return 0;
        }
        double total = 0;
        for (float v : be.toHost(be.cat(s, sums, 0))) {
            total += v;
        }
        return total;
    }

    private void update(Scope s, Packed p, double lr) {
        Backend be = s.backend();
        p.step++;
        moments(p);
        if (h.centralization() != 0 || h.normalization() != 0) {
            for (Tensor r : p.runs) {
                normalizeRows(s, r);
            }
        }
        long t = p.step;
        double bc1 = 1 - Math.pow(h.beta1(), t);
        double bc2Sqrt = Math.pow(1 - Math.pow(h.beta2(), t), 0.5);
        double stepSize = lr / bc1;
        Tensor g = p.grads;
        // Python floats meet float32 tensors: each scalar is rounded to float32 once, as on the host
        be.scaleInto(p.ema, (float) h.beta1());                          // ema.mul_(β1).add_(G, alpha=1-β1)
        be.axpyInto(p.ema, (float) (1 - h.beta1()), g);
        be.axpyInto(g, (float) h.ampFac(), p.ema);                       // G.add_(ema, alpha=amp)
        try (Scope e = s.child("update")) {
            Tensor sq = be.mul(e, g, g);                                 // ema_sq.mul_(β2).addcmul_(G, G, value=1-β2)
            be.scaleInto(p.emaSquared, (float) h.beta2());
            be.axpyInto(p.emaSquared, (float) (1 - h.beta2()), sq);
            sq.close();
            Tensor root = be.unary(e, Backend.Unary.SQRT, p.emaSquared);
            Tensor denom = be.affine(e, root, 1.0 / (float) bc2Sqrt, (float) h.eps()); // sqrt(v)/bc2 + eps
            root.close();
            Tensor change = be.div(e, g, denom);
            denom.close();
            if (h.weightDecay() != 0) {
                be.scaleInto(p.values, (float) (1 - stepSize * h.weightDecay()));
            }
            be.axpyInto(p.values, (float) -stepSize, change);            // addcdiv_(G, D, value=-stepSize)
        }
    }

    /** The group's moment buffers, zeros when first asked for (the reference creates its state at the first step). */
    private void moments(Packed p) {
        if (p.ema == null) {
            p.ema = scope.zeros(p.values.shape(), DType.F32).named("ema");
            p.emaSquared = scope.zeros(p.values.shape(), DType.F32).named("ema_squared");
        }
    }

    /**
     * The gradients of one shape, in place: minus {@code centralization} times each row's mean, then divided by
     * each row's (or, without {@code normalize_channels}, each tensor's) unbiased std + 1e-8.
     */
    private void normalizeRows(Scope s, Tensor g) {
        Backend be = s.backend();
        try (Scope e = s.child("rows")) {
            Tensor x = g;
            int[] lastDim = {2};
            if (h.centralization() != 0) {
                Tensor mu = be.mean(e, g, lastDim, true);
                x = be.add(e, g, mu, -(float) h.centralization());
            }
            if (h.normalization() != 0) {
                int k = g.dim(0);
                boolean perRow = h.normalizeChannels();
                int perTensor = g.dim(1) * g.dim(2);
                long n = perRow ? g.dim(2) : perTensor;
                if (perRow || n > 2) {
                    Tensor y = perRow ? x : be.reshape(e, x, Shape.of(k, 1, perTensor));
                    Tensor mean = be.mean(e, y, lastDim, true);
                    Tensor d = be.add(e, y, mean, -1);
                    Tensor ss = be.sum(e, be.mul(e, d, d), lastDim, true);
                    Tensor std = be.unary(e, Backend.Unary.SQRT, be.affine(e, ss, 1.0 / (n - 1), 0));
                    Tensor divided = be.div(e, y, be.affine(e, std, 1, 1e-8f));
                    x = perRow ? divided : be.reshape(e, divided, g.shape());
                }
            }
            if (x != g) {
                be.copyInto(g, x);
            }
        }
    }

    /** The state in the host optimizer's format: per parameter its step and moment buffers (a sync point). */
    public OptimizerState exportState() {
        List<String> slots = host.slotNames();
        record Saved(long step, float[] ema, float[] emaSquared) {
        }
        // parameter name -> its step and moments, sorted by name as the host optimizer exports them
        java.util.TreeMap<String, Saved> byName = new java.util.TreeMap<>();
        for (Packed p : groups) {
            if (p.step == 0) {
                continue;
            }
            float[] ema = scope.backend().toHost(p.ema);
            float[] emaSquared = scope.backend().toHost(p.emaSquared);
            for (int i = 0; i < p.params.size(); i++) {
                int from = (int) p.offsets[i];
                int to = (int) p.offsets[i + 1];
                byName.put(p.params.get(i).name(), new Saved(p.step, Arrays.copyOfRange(ema, from, to),
                        Arrays.copyOfRange(emaSquared, from, to)));
            }
        }
        Map<String, Long> steps = new LinkedHashMap<>();
        Map<String, float[]> tensors = new LinkedHashMap<>();
        byName.forEach((name, v) -> {
            steps.put(name, v.step());
            tensors.put(name + "/" + slots.get(0), v.ema());
            tensors.put(name + "/" + slots.get(1), v.emaSquared());
        });
        return new OptimizerState(host.type(), steps, tensors);
    }

    /**
     * Replaces the state by {@code state} (from either optimizer of the same type): each group's parameters must
     * all be in it with one step count, or none of them (a group not stepped yet).
     *
     * @throws IllegalArgumentException naming the first parameter that does not fit
     */
    public void importState(OptimizerState state) {
        if (!state.type().equals(host.type())) {
            throw new IllegalArgumentException("optimizer state is for " + state.type() + ", this optimizer is " + host.type());
        }
        List<String> slots = host.slotNames();
        for (Packed p : groups) {
            Long step = null;
            int present = 0;
            for (Param q : p.params) {
                Long s = state.steps().get(q.name());
                if (s != null) {
                    present++;
                    if (step != null && !step.equals(s)) {
                        throw new IllegalArgumentException("optimizer state: " + q.name() + " is at step " + s
                                + ", the parameters before it at " + step + " (the device optimizer needs one step per group)");
                    }
                    step = s;
                }
            }
            if (present == 0) {
                p.step = 0;
                continue;
            }
            if (present != p.params.size()) {
                throw new IllegalArgumentException("optimizer state: holds " + present + " of a group's "
                        + p.params.size() + " parameters");
            }
            float[][] flat = {new float[(int) p.numel], new float[(int) p.numel]};
            for (int i = 0; i < p.params.size(); i++) {
                Param q = p.params.get(i);
                for (int k = 0; k < 2; k++) {
                    float[] b = state.tensors().get(q.name() + "/" + slots.get(k));
                    if (b == null || b.length != q.numel()) {
                        throw new IllegalArgumentException("optimizer state lacks " + q.name() + "/" + slots.get(k)
                                + (b == null ? "" : " of " + q.numel() + " values"));
                    }
                    System.arraycopy(b, 0, flat[k], (int) p.offsets[i], b.length);
                }
            }
            p.step = step;
            moments(p);
            scope.backend().copyFromHostAll(List.of(p.ema, p.emaSquared), List.of(flat[0], flat[1]));
        }
    }
}
