package tenmin.tools;

import java.nio.file.Path;

/**
 * What {@link Chop#run} does.
 *
 * @param input  the LoRA file
 * @param vector the weight vector {@code g,w1,...,wn} (global multiplier, then one weight per block of
 *               the layout); null for analysis only
 * @param output the output file; null means {@code <input dir>/<stem>-chop.safetensors}
 * @param compat reproduce chop_blocks' cube scaling of fractional weights (alpha, up and down each × w,
 *               numpy rounding) instead of the default linear scaling of {@code lora_up}, and leave out
 *               the weighted layout at DEBUG level as chop_blocks does
 */
public record ChopConfig(Path input, String vector, Path output, boolean compat) {
}
