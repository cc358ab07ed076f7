package tenmin.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Device;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.models.sdxl.UnetConfig;

/**
 * Which U-Net blocks a training run checkpoints ({@code --checkpointing}). A named policy is taken as it is;
 * {@code auto} on a GPU tries {@link CheckpointPolicy#autoCandidates} from the least recomputation (none) to the
 * most (all), plans one micro-batch of each on shapes ({@link TrainBenchmark#plan}, about a second each at full
 * size) and takes the first whose planned peak fits the device's free memory less a headroom: on an 80 GB card
 * the recipe then skips most of the recomputation that full checkpointing costs (about a third of a step's
 * FLOPs), on a 24 GB card it checkpoints every block as the reference does. Elsewhere (the CPU, or no memory
 * figure) {@code auto} follows {@code --gradient_checkpointing}.
 */
public final class AutoCheckpointing {
    /** Fixed part of what is kept free beyond the planned tensor storage (CUDA context growth, cuDNN/cuBLAS workspaces). */
    static final long HEADROOM_BYTES = 2L << 30;
    /** Share of the card kept free for the caching allocator's rounding and fragmentation, which the plan does not see. */
    static final double HEADROOM_SHARE = 0.15;

    private AutoCheckpointing() {
    }

    /**
     * The resolved policy, the plan made for it while choosing (null when none was made) and the line that
     * explains an automatic choice (null for a policy named outright).
     */
    public record Choice(CheckpointPolicy policy, TrainBenchmark.Plan plan, String why) {
    }

    /** Resolves {@code cfg}'s checkpointing for the training backend; {@code planner} plans one micro-batch. */
    static Choice resolve(TrainConfig cfg, SdxlConfig model, Backend backend,
                          Function<CheckpointPolicy, TrainBenchmark.Plan> planner) {
        return resolve(cfg, model, backend.device(), deviceMemory(backend), planner);
    }

    /**
     * False when {@code step} holds the optimizer's moments on the device ({@link TrainBenchmark.Plan#deviceMomentBytes})
     * and does not fit the {@link #budget} of {@code memory} = (free, total) bytes: then they belong on the host (a
     * 16 GB card with the recipe); true otherwise, and where there is no memory figure.
     */
    static boolean momentsFit(TrainBenchmark.Plan step, long[] memory) {
        return memory == null || step.deviceMomentBytes() == 0 || step.loopPeakBytes() <= budget(memory[0], memory[1]);
    }

    /** (free, total) bytes of the backend's device as the driver reports them, or null (the CPU, no figure). */
    static long[] deviceMemory(Backend backend) {
        return backend instanceof TorchBackend tb ? tb.deviceMemoryInfo() : null;
    }

    /**
     * Resolves {@code cfg}'s checkpointing on {@code device} with {@code memory} = (free, total) bytes, or null
     * where there is no device memory to fit (the CPU).
     */
    public static Choice resolve(TrainConfig cfg, SdxlConfig model, Device device, long[] memory,
                          Function<CheckpointPolicy, TrainBenchmark.Plan> planner) {
        String spec = cfg.loop().checkpointingSpec();
        if (!CheckpointPolicy.isAuto(spec)) {
            return new Choice(CheckpointPolicy.parse(spec), null, null);
        }
        CheckpointPolicy fallback = cfg.loop().gradientCheckpointing() ? CheckpointPolicy.all() : CheckpointPolicy.none();
        if (memory == null || !cfg.network().trainUnet()) {
            return new Choice(fallback, null, "gradient checkpointing auto on " + device + ": "
                    + (memory == null ? "no device memory to fit" : "the U-Net is not trained") + ", so "
                    + fallback + " (as --gradient_checkpointing " + (cfg.loop().gradientCheckpointing() ? "is" : "is not")
                    + " given)");
        }
        return fit(model.unet(), device, memory, planner);
    }

    /**
     * The least recomputation that fits {@code memory} = (free, total) bytes of {@code device}: the first of
     * {@link CheckpointPolicy#autoCandidates} whose plan fits the {@link #budget}, else all; with the plan made for
     * it and a line listing the plans it passed over. {@code tenmin train} and {@code tenmin bench train} both
     * choose here.
     */
    public static Choice fit(UnetConfig unet, Device device, long[] memory,
                             Function<CheckpointPolicy, TrainBenchmark.Plan> planner) {
        long budget = budget(memory[0], memory[1]);
        List<CheckpointPolicy> candidates = CheckpointPolicy.autoCandidates(unet);
        List<TrainBenchmark.Plan> plans = new ArrayList<>();
        int chosen = choose(candidates, budget, c -> {
            TrainBenchmark.Plan p = planner.apply(c);
            plans.add(p);
            return p.loopPeakBytes();
        });
        TrainBenchmark.Plan plan = plans.get(chosen);
        StringBuilder why = new StringBuilder(String.format(Locale.ROOT,
                "gradient checkpointing auto (the least recomputation that fits, the same gradients;"
                        + " --checkpointing all recomputes every block as the reference does): %s free of %s on %s,"
                        + " %s kept free, so up to %s of tensor storage; ",
                TrainBenchmark.gib(memory[0]), TrainBenchmark.gib(memory[1]), device,
                TrainBenchmark.gib(memory[0] - budget), TrainBenchmark.gib(Math.max(0, budget))));
        for (int i = 0; i <= chosen; i++) {
            why.append(i == 0 ? "" : ", ").append(candidates.get(i)).append(" plans ")
                    .append(TrainBenchmark.gib(plans.get(i).loopPeakBytes()));
        }
        boolean fits = plan.loopPeakBytes() <= budget;
        why.append(fits ? " -> " + candidates.get(chosen)
                : " -> all, although it does not fit either (the run may fail for memory: lower --train_batch_size)");
        return new Choice(candidates.get(chosen), plan, why.toString());
    }

    /** Plans one micro-batch of {@code cfg} at its full resolution with a given policy (what {@link #resolve} compares). */
    public static Function<CheckpointPolicy, TrainBenchmark.Plan> planner(TrainConfig cfg, SdxlConfig model,
                                                                          SdxlDtypes dtypes, Device device) {
        return policy -> TrainSetup.stepPlan(cfg, model, dtypes, device, policy);
    }

    /** Device bytes the plan's tensor storage may use: the free memory less {@link #HEADROOM_BYTES} and {@link #HEADROOM_SHARE}. */
    public static long budget(long freeBytes, long totalBytes) {
        return freeBytes - HEADROOM_BYTES - (long) (HEADROOM_SHARE * totalBytes);
    }

    /**
     * Index of the first candidate whose peak fits {@code budget}, asking {@code peak} in order and no further;
     * the last candidate when none fits.
     */
    public static int choose(List<CheckpointPolicy> candidates, long budget,
                             java.util.function.ToLongFunction<CheckpointPolicy> peak) {
        for (int i = 0; i < candidates.size(); i++) {
            if (peak.applyAsLong(candidates.get(i)) <= budget) {
                return i;
            }
        }
        return candidates.size() - 1;
    }
}
