package tenmin.sample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import tenmin.core.InputException;
import tenmin.formats.PngFile;
import tenmin.formats.RgbImage;

/**
 * Output names that never overwrite, A1111 style: {@code <number>-<seed>.png} where the number (5 digits,
 * more when needed) is one more than the largest number any file in the folder starts with
 * ({@code 00000-…}), so a folder collects images from run to run in order ({@code 00000-42.png},
 * {@code 00001-43.png}, …). Other outputs share the counter ({@code 00002-atlas-mylora-42.png} with its
 * {@code .csv} and {@code .json}). PNGs are written atomically with the {@code parameters} text chunk.
 */
public final class ImageFiles {
    private static final Pattern NUMBERED = Pattern.compile("^(\\d{5,9})-.*");

    private final Path dir;
    private int next;

    private ImageFiles(Path dir, int next) {
        this.dir = dir;
        this.next = next;
    }

    /**
     * The output folder {@code dir}, created when missing (parents too).
     *
     * @throws InputException when {@code dir} is a file or cannot be created
     */
    public static ImageFiles in(Path dir) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new InputException("-o " + dir + ": exists and is not a folder");
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new InputException("-o " + dir + ": cannot create the folder (" + e.getMessage() + ")", e);
        }
        if (!Files.isWritable(dir)) {
            throw new InputException("-o " + dir + ": folder is not writable");
        }
        return new ImageFiles(dir, nextNumber(dir));
    }

    /** One more than the largest leading number of a file name in {@code dir} (0 in an empty folder). */
    static int nextNumber(Path dir) {
        int max = -1;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Matcher m = NUMBERED.matcher(p.getFileName().toString());
                if (m.matches()) {
                    max = Math.max(max, Integer.parseInt(m.group(1)));
                }
            }
        } catch (IOException e) {
            throw new InputException(dir + ": cannot list the folder (" + e.getMessage() + ")", e);
        }
        return max + 1;
    }

    public Path dir() {
        return dir;
    }

    /** Reserves the next number: {@code <dir>/<number>-<tag>} without extension, e.g. {@code out/00003-42}. */
    public Path reserve(String tag) {
        String number = String.format("%05d", next++);
        return dir.resolve(number + "-" + tag.replaceAll("[\\\\/:*?\"<>|\\s]+", "_"));
    }

    /** Writes {@code image} as {@code <next number>-<seed>.png} with the given {@code parameters} text. */
    public Path writeImage(RgbImage image, long seed, String parameters) throws IOException {
        Path target = withExtension(reserve(Long.toString(seed)), ".png");
        write(target, image, parameters);
        return target;
    }

    /** Writes a PNG atomically with the A1111 {@code parameters} chunk (none when null). */
    public static void write(Path target, RgbImage image, String parameters) throws IOException {
        PngFile.write(target, image, parameters == null ? Map.of() : Map.of("parameters", parameters));
    }

    /** {@code base} + {@code extension}. */
    public static Path withExtension(Path base, String extension) {
        return base.resolveSibling(base.getFileName() + extension);
    }
}
