package tenmin.tools;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import tenmin.core.InputException;
import tenmin.formats.SafetensorsWriter;

/** Output file names and the guard that no tool ever writes over one of its inputs. */
public final class Outputs {
    private Outputs() {
    }

    /**
     * {@code <input dir>/<stem><tag><suffix>}: Python's {@code Path.with_stem(stem + tag)}, so
     * {@code x.safetensors} becomes {@code x-chop.safetensors} and the original extension is kept.
     */
    public static Path sibling(Path input, String tag) {
        String name = input.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        String suffix = dot > 0 ? name.substring(dot) : "";
        return input.resolveSibling(stem + tag + suffix);
    }

    /** Throws {@link InputException} when {@code output} names the same file as one of {@code inputs}. */
    public static void requireNotAnInput(Path output, Path... inputs) {
        for (Path in : inputs) {
            boolean same;
            try {
                same = Files.exists(output) ? Files.isSameFile(output, in)
                        : output.toAbsolutePath().normalize().equals(in.toAbsolutePath().normalize());
            } catch (IOException e) {
                same = false;
            }
            if (same) {
                throw new InputException(output + ": the output would overwrite the input " + in
                        + "; choose another name with -o");
            }
        }
    }

    /** Writes {@code writer}'s file atomically to {@code output}; an I/O failure is an internal error. */
    public static void write(SafetensorsWriter writer, Path output) {
        try {
            writer.write(output);
        } catch (IOException e) {
            throw new UncheckedIOException(output + ": write failed: " + e.getMessage(), e);
        }
    }
}
