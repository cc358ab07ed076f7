package tenmin.tools;

import java.nio.file.Path;

import tenmin.lora.BlockWeights;

/**
 * What {@link Blocks#run} does.
 *
 * @param input   the LoRA file
 * @param vector  the block-weight vector, preset name or {@code %} shorthand ({@link BlockWeights})
 * @param output  the output file; null means {@code <input dir>/<stem>-lbw.safetensors}
 * @param options format, inverse, seed, A and B
 */
public record BlocksConfig(Path input, String vector, Path output, BlockWeights.Options options) {
}
