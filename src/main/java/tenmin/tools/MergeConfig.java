package tenmin.tools;

import java.nio.file.Path;
import java.util.List;

import tenmin.core.InputException;
import tenmin.lora.BlockWeights;
import tenmin.lora.PythonFloat;

/**
 * What {@link Merge#run} does.
 *
 * @param checkpoint    the base checkpoint (single-file SDXL, SAI/sgm key layout)
 * @param loras         the LoRAs to bake in, each with its strength
 * @param blocks        a block-weight vector applied to every LoRA ({@link BlockWeights}), or null
 * @param blockOptions  format, inverse, seed, A, B for {@code blocks}
 * @param output        the merged checkpoint to write
 * @param skipUnmatched merge what matches and warn about LoRA modules without a checkpoint weight
 *                      (default: fail, naming them)
 */
public record MergeConfig(Path checkpoint, List<LoraSpec> loras, String blocks, BlockWeights.Options blockOptions,
                          Path output, boolean skipUnmatched) {

    public MergeConfig {
        loras = List.copyOf(loras);
    }

    /** One {@code LORA[:WEIGHT]} argument. */
    public record LoraSpec(Path path, double weight) {
        /**
         * Splits {@code file[:weight]} on its last colon, only when what follows parses as a number, so
         * {@code C:\loras\x.safetensors} stays a path and {@code C:\loras\x.safetensors:0.5} gets weight 0.5.
         */
        public static LoraSpec parse(String arg) {
            int colon = arg.lastIndexOf(':');
            if (colon > 0) {
                Double w = PythonFloat.parse(arg.substring(colon + 1));
                if (w != null) {
                    if (!Double.isFinite(w)) {
                        throw new InputException(arg + ": weight " + arg.substring(colon + 1) + " is not a finite number");
                    }
                    return new LoraSpec(Path.of(arg.substring(0, colon)), w);
                }
            }
            return new LoraSpec(Path.of(arg), 1.0);
        }
    }
}
