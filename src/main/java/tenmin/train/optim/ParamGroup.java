package tenmin.train.optim;

import java.util.List;

/**
 * Parameters sharing one base learning rate (trainer-spec §7.1: group 0 = text-encoder LoRA, lr
 * {@code --text_encoder_lr}; group 1 = U-Net LoRA, lr {@code --unet_lr}). The scheduler's factor multiplies
 * {@code baseLr} at every step.
 *
 * @param name   a label for logs and state ({@code textencoder}, {@code unet})
 * @param baseLr the learning rate before the schedule factor
 * @param params the group's tensors, in the order the reference registers them
 */
public record ParamGroup(String name, double baseLr, List<Param> params) {
    public ParamGroup {
        params = List.copyOf(params);
    }
}
