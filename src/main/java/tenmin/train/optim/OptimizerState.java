package tenmin.train.optim;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything an optimizer needs to continue bit for bit: its type, the per-parameter step counters and the
 * per-parameter moment buffers, keyed {@code <param name>/<slot>} (e.g. {@code lora_unet_x.lora_up.weight/ema}).
 *
 * @param type    {@link Optimizer#type()} of the optimizer that wrote it
 * @param steps   step counter per parameter name (parameters never stepped are absent)
 * @param tensors moment buffers, fp32
 */
public record OptimizerState(String type, Map<String, Long> steps, Map<String, float[]> tensors) {
    public OptimizerState {
        steps = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(steps));
        tensors = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }
}
