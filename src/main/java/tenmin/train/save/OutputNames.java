package tenmin.train.save;

import java.util.Locale;

/**
 * File names of saved LoRAs (trainer-spec §9.1; kohya {@code get_step_ckpt_name}, {@code get_last_ckpt_name}):
 * {@code <name>-step%08d.safetensors} after a step, {@code <name>.safetensors} at the end, where the name
 * is {@code --output_name} or kohya's defaults {@code at} (steps) and {@code last} (end). Each LoRA file has
 * its resume state beside it: the same stem with {@link #STATE_SUFFIX}.
 */
public final class OutputNames {
    /** Suffix of training-state files (replaces {@code .safetensors}). */
    public static final String STATE_SUFFIX = ".tenmin-state";

    private OutputNames() {
    }

    /** {@code <name or "at">-step00000010.safetensors}. */
    public static String step(String outputName, long step) {
        return (outputName == null ? "at" : outputName) + String.format(Locale.ROOT, "-step%08d", step) + ".safetensors";
    }

    /** {@code <name or "last">.safetensors}. */
    public static String last(String outputName) {
        return (outputName == null ? "last" : outputName) + ".safetensors";
    }

    /** {@code <name or "epoch">-000003.safetensors} (epoch saves, kohya {@code get_epoch_ckpt_name}). */
    public static String epoch(String outputName, int epoch) {
        return (outputName == null ? "epoch" : outputName) + String.format(Locale.ROOT, "-%06d", epoch) + ".safetensors";
    }

    /** The training-state file beside a LoRA file name. */
    public static String stateFor(String loraFileName) {
        String stem = loraFileName.endsWith(".safetensors")
                ? loraFileName.substring(0, loraFileName.length() - ".safetensors".length()) : loraFileName;
        return stem + STATE_SUFFIX;
    }
}
