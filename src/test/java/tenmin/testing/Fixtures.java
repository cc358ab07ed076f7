package tenmin.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds the golden fixtures: the folder named by {@code TENMIN_FIXTURES} (environment) or the
 * {@code tenmin.fixtures} system property, else a {@code shared/fixtures} folder beside the repository
 * root or beside one of its parents (the layout of a checkout next to {@code ../shared}).
 */
public final class Fixtures {
    private Fixtures() {
    }

    /** The fixtures root; fails the test with a clear message when none is found. */
    public static Path root() {
        Path p = find();
        if (p == null) {
            throw new AssertionError("no fixtures found: set TENMIN_FIXTURES to a folder laid out like"
                    + " shared/fixtures (models/<name>/..., sdxl-keys.json, ...)");
        }
        return p;
    }

    /** A file or folder under the fixtures root (need not exist). */
    public static Path resolve(String relative) {
        return root().resolve(relative);
    }

    /** Skips the calling test when the named fixture file is absent from the chosen root. */
    public static Path require(String relative) {
        Path p = resolve(relative);
        Assumptions.assumeTrue(Files.exists(p), "fixture " + relative + " not present under " + root());
        return p;
    }

    /**
     * The numbers of {@code schedule.json}'s {@code ddpm} entry {@code key}: {@code alphas_cumprod} (diffusers' float32
     * ᾱ, 1000 values) or {@code alphas_cumprod_float64} (sgm's).
     */
    public static double[] ddpmSchedule(String key) {
        try {
            JsonNode a = new ObjectMapper().readTree(require("schedule.json").toFile()).get("ddpm").get(key);
            double[] out = new double[a.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = a.get(i).asDouble();
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every model folder under {@code models/} (sorted by name): parity tests run once per folder. */
    public static List<Path> modelDirs() {
        Path models = root().resolve("models");
        List<Path> out = new ArrayList<>();
        if (Files.isDirectory(models)) {
            try (Stream<Path> s = Files.list(models)) {
                s.filter(Files::isDirectory).sorted().forEach(out::add);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (out.isEmpty()) {
            throw new AssertionError("no model folders under " + models);
        }
        return out;
    }

    private static Path find() {
        String env = System.getenv("TENMIN_FIXTURES");
        if (env == null || env.isBlank()) {
            env = System.getProperty("tenmin.fixtures");
        }
        if (env != null && !env.isBlank()) {
            return Path.of(env).toAbsolutePath();
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("shared").resolve("fixtures");
            if (Files.isDirectory(candidate)) {
                return candidate;
            }
        }
        return null;
    }
}
