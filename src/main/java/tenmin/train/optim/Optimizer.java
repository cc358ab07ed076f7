package tenmin.train.optim;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A host-side optimizer over fp32 parameter buffers. One {@link #step} per optimizer step (after gradient
 * accumulation and clipping); parameters without a gradient ({@link Param#hasGrad()} false) are skipped
 * entirely, as PyTorch's optimizers skip {@code .grad is None}.
 *
 * <p>Per-parameter state (a step counter and named fp32 buffers) is created lazily at a parameter's first
 * update and can be exported and imported for {@code --resume}. {@link #update} runs for several parameters at
 * once on the common fork-join pool: it may touch only its parameter and slot.
 */
public abstract class Optimizer {

    /** Per-parameter state: its own step counter and moment buffers. */
    protected static final class Slot {
        long step;
        final Map<String, float[]> buffers = new LinkedHashMap<>();

        float[] buffer(String slot, int n) {
            return buffers.computeIfAbsent(slot, k -> new float[n]);
        }
    }

    private final Map<String, Slot> slots = new HashMap<>();
    private final String type;
    private final String metadataName;
    private final List<String> slotNames;

    /**
     * @param type         short name used in state files and messages ({@code ClybW}, {@code AdamW}, ...)
     * @param metadataName the reference optimizer's module path and class (kohya's {@code ss_optimizer})
     * @param slotNames    the buffers kept per parameter, in a fixed order
     */
    protected Optimizer(String type, String metadataName, List<String> slotNames) {
        this.type = type;
        this.metadataName = metadataName;
        this.slotNames = List.copyOf(slotNames);
    }

    /** Short name used in state files and messages ({@code ClybW}, {@code AdamW}, ...). */
    public final String type() {
        return type;
    }

    /** What kohya writes as {@code ss_optimizer} for this optimizer (module path + class; args are appended by the caller). */
    public final String metadataName() {
        return metadataName;
    }

    /** The buffer names this optimizer keeps per parameter, in a fixed order (each as large as the parameter). */
    public final List<String> slotNames() {
        return slotNames;
    }

    /** Updates one parameter with its gradient and learning rate; {@code slot.step} is already incremented. */
    protected abstract void update(Param p, Slot slot, double lr);

    /**
     * Applies one optimizer step to every parameter that has a gradient.
     *
     * @param groups the parameter groups
     * @param lrs    the learning rate of each group at this step (base lr times the schedule factor)
     */
    public final void step(List<ParamGroup> groups, double[] lrs) {
        if (lrs.length != groups.size()) {
            throw new IllegalArgumentException(groups.size() + " groups but " + lrs.length + " learning rates");
        }
        record Update(Param p, Slot slot, double lr) {
        }
        List<Update> updates = new ArrayList<>();
        for (int g = 0; g < groups.size(); g++) {
            for (Param p : groups.get(g).params()) {
                if (!p.hasGrad()) {
                    continue;
                }
                Slot slot = slots.computeIfAbsent(p.name(), k -> new Slot());
                for (String s : slotNames()) {
                    float[] b = slot.buffer(s, p.numel());
                    if (b.length != p.numel()) {
                        throw new IllegalStateException(p.name() + ": state " + s + " has " + b.length
                                + " values, parameter " + p.numel());
                    }
                }
                slot.step++;
                updates.add(new Update(p, slot, lrs[g]));
            }
        }
        // Parameters are independent and each update's arithmetic is sequential, so the parameters run in
        // parallel with bit-identical results (the recipe's 113 million values: ~2 s on one core).
        updates.parallelStream().forEach(u -> update(u.p(), u.slot(), u.lr()));
    }

    /** The step counter of one parameter (0 before its first update). */
    public final long stepOf(String paramName) {
        Slot s = slots.get(paramName);
        return s == null ? 0 : s.step;
    }

    /** A live view of one state buffer (null when the parameter was never updated). */
    public final float[] buffer(String paramName, String slotName) {
        Slot s = slots.get(paramName);
        return s == null ? null : s.buffers.get(slotName);
    }

    /** Copies the complete state out (for the training-state file). */
    public final OptimizerState exportState() {
        Map<String, Long> steps = new LinkedHashMap<>();
        Map<String, float[]> tensors = new LinkedHashMap<>();
        slots.keySet().stream().sorted().forEach(name -> {
            Slot s = slots.get(name);
            steps.put(name, s.step);
            for (Map.Entry<String, float[]> b : s.buffers.entrySet()) {
                tensors.put(name + "/" + b.getKey(), b.getValue().clone());
            }
        });
        return new OptimizerState(type(), steps, tensors);
    }

    /** Replaces the state by {@code state}; it must come from an optimizer of the same type. */
    public final void importState(OptimizerState state) {
        if (!state.type().equals(type())) {
            throw new IllegalArgumentException("optimizer state is for " + state.type() + ", this optimizer is " + type());
        }
        slots.clear();
        for (Map.Entry<String, Long> e : state.steps().entrySet()) {
            Slot s = new Slot();
            s.step = e.getValue();
            for (String slotName : slotNames()) {
                float[] t = state.tensors().get(e.getKey() + "/" + slotName);
                if (t == null) {
                    throw new IllegalArgumentException("optimizer state lacks " + e.getKey() + "/" + slotName);
                }
                s.buffers.put(slotName, t.clone());
            }
            slots.put(e.getKey(), s);
        }
    }
}
