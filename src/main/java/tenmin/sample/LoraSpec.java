package tenmin.sample;

import java.nio.file.Files;
import java.nio.file.Path;

import tenmin.core.InputException;
import tenmin.lora.PythonFloat;

/**
 * One {@code --lora FILE[:STRENGTH[:BLOCKVECTOR]]} argument: a LoRA file, the strength its branch is applied
 * with (default 1) and an optional block-weight vector (any form {@link tenmin.lora.BlockWeights} reads:
 * Inspire-Pack list, preset, {@code NAME:vector}, {@code %} shorthand, A1111 12/20 slots).
 *
 * @param file     the LoRA
 * @param strength multiplier of every module (times the block ratio when a vector is given)
 * @param vector   the block-weight vector as typed, or null
 */
public record LoraSpec(Path file, double strength, String vector) {

    public LoraSpec {
        if (!Double.isFinite(strength)) {
            throw new InputException("--lora " + file + ": strength " + strength + " is not a finite number");
        }
        if (vector != null && vector.isBlank()) {
            throw new InputException("--lora " + file + ": the block vector after the strength is empty");
        }
    }

    /**
     * Splits {@code FILE[:STRENGTH[:VECTOR]]} at the first colon that is followed by a number (and then the end
     * or another colon), so {@code C:\loras\x.safetensors:0.8} keeps its drive letter and a vector may itself
     * contain colons ({@code x.safetensors:1:SDXL-LyC-ALL:1,1,...}). An argument that names an existing file
     * as a whole is that file at strength 1.
     */
    public static LoraSpec parse(String arg) {
        if (arg.isBlank()) {
            throw new InputException("--lora: empty argument (expected FILE[:STRENGTH[:BLOCKVECTOR]])");
        }
        if (Files.isRegularFile(Path.of(arg))) {
            return new LoraSpec(Path.of(arg), 1.0, null);
        }
        for (int colon = arg.indexOf(':'); colon > 0; colon = arg.indexOf(':', colon + 1)) {
            int next = arg.indexOf(':', colon + 1);
            String number = next < 0 ? arg.substring(colon + 1) : arg.substring(colon + 1, next);
            Double strength = PythonFloat.parse(number);
            if (strength == null) {
                continue;
            }
            if (!Double.isFinite(strength)) {
                throw new InputException("--lora " + arg + ": strength " + number + " is not a finite number");
            }
            String vector = next < 0 ? null : arg.substring(next + 1);
            return new LoraSpec(Path.of(arg.substring(0, colon)), strength, vector);
        }
        return new LoraSpec(Path.of(arg), 1.0, null);
    }

    /** The name A1111 shows for the LoRA: the file name without its extension. */
    public String name() {
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }
}
