package tenmin.train.save;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.train.optim.OptimizerState;

/**
 * Everything {@code --resume} needs to continue a run bit for bit: the position (global step, epoch,
 * micro-batch within the epoch), the seed and named generator states, the LoRA weights in fp32, the
 * optimizer's moments and step counters, the running loss record, and a digest of the config it was made
 * with (resuming with a different recipe is refused unless the caller allows it).
 *
 * @param globalStep   optimizer steps done
 * @param epoch        current epoch (0-based)
 * @param batchInEpoch micro-batches of {@code epoch} already done
 * @param seed         the run's seed
 * @param configDigest digest of the resolved config (see {@link TrainingStateFile#configDigest})
 * @param rng          named generator states ({@code tenmin.train.Rng#state()})
 * @param info         free-form facts (tenmin version, session id, start time)
 * @param lora         LoRA weights, fp32, in state-dict order
 * @param optimizer    optimizer state
 * @param lossRecord   the running-loss window (kohya's LossRecorder list)
 * @param lossTotal    its running total
 */
public record TrainingState(long globalStep, int epoch, int batchInEpoch, long seed, String configDigest,
                            Map<String, long[]> rng, Map<String, String> info, List<StateTensor> lora,
                            OptimizerState optimizer, float[] lossRecord, double lossTotal) {
    public TrainingState {
        rng = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rng));
        info = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(info));
        lora = List.copyOf(lora);
    }
}
