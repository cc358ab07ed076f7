package tenmin.sample;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.Toml;

/**
 * kohya's sample-prompt files (trainer-spec §11; {@code line_to_prompt_dict}): a {@code .txt} with one
 * prompt per line — blank lines and lines whose first character is {@code #} skipped — where the line is split on
 * {@code " --"}, part 0 is the prompt and every part (part 0 included, as the reference does) may set
 * {@code w <int>}, {@code h <int>}, {@code d <int>} (seed), {@code s <int>} (steps, clamped to 1..1000),
 * {@code l <float>} (CFG scale), {@code n <text>} (negative prompt), {@code ss <name>} (sampler),
 * {@code cn <path>} (ControlNet image, ignored for SDXL). Options are matched case-insensitively at the start
 * of a part. Also {@code .toml} ({@code [prompt]} defaults with {@code [[prompt.subset]]} entries) and
 * {@code .json} (a list of objects) files with the keys {@code prompt, negative_prompt, width, height,
 * scale, sample_steps, seed, sample_sampler}.
 *
 * <p>Defaults: 512×512, 30 steps, scale 7.5, empty negative prompt, a random seed; width and height are
 * rounded down to multiples of 8 (at least 64). A value that does not parse is reported (WARNING, with
 * the line) and ignored, as the reference does.
 */
public final class PromptFile {
    /** kohya's defaults. */
    public static final int DEFAULT_SIZE = 512;
    public static final int DEFAULT_STEPS = 30;
    public static final double DEFAULT_SCALE = 7.5;

    private static final Pattern W = Pattern.compile("w (\\d+)", Pattern.CASE_INSENSITIVE);
    private static final Pattern H = Pattern.compile("h (\\d+)", Pattern.CASE_INSENSITIVE);
    private static final Pattern D = Pattern.compile("d (\\d+)", Pattern.CASE_INSENSITIVE);
    private static final Pattern S = Pattern.compile("s (\\d+)", Pattern.CASE_INSENSITIVE);
    private static final Pattern L = Pattern.compile("l ([\\d.]+)", Pattern.CASE_INSENSITIVE);
    private static final Pattern N = Pattern.compile("n (.+)", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);
    private static final Pattern SS = Pattern.compile("ss (.+)", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);
    private static final Pattern CN = Pattern.compile("cn (.+)", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);

    private PromptFile() {
    }

    /**
     * One sample to render.
     *
     * @param index          position in the file (0-based; used in sample file names)
     * @param prompt         the prompt
     * @param negativePrompt negative prompt ("" when none)
     * @param width          pixels, multiple of 8
     * @param height         pixels, multiple of 8
     * @param seed           the seed, or null for a random one
     * @param steps          sampling steps
     * @param scale          CFG scale
     * @param sampler        sampler name (the run's {@code --sample_sampler} unless the line sets one)
     */
    public record SamplePrompt(int index, String prompt, String negativePrompt, int width, int height, Long seed,
                               int steps, double scale, String sampler) {
    }

    /**
     * What a prompt gets when its line or entry does not say.
     *
     * @param width          pixels (rounded down to a multiple of 8, at least 64, like the line values)
     * @param height         pixels
     * @param steps          sampling steps
     * @param scale          CFG scale
     * @param negativePrompt negative prompt
     * @param sampler        sampler name
     */
    public record Defaults(int width, int height, int steps, double scale, String negativePrompt, String sampler) {
        /** kohya's: 512x512, 30 steps, scale 7.5, no negative prompt, the run's sampler. */
        public static Defaults kohya(String sampler) {
            return new Defaults(DEFAULT_SIZE, DEFAULT_SIZE, DEFAULT_STEPS, DEFAULT_SCALE, "", sampler);
        }
    }

    /** Reads a prompt file (.txt, .toml or .json by extension) with kohya's defaults. */
    public static List<SamplePrompt> read(Path file, String defaultSampler, Reporter reporter) {
        return read(file, Defaults.kohya(defaultSampler), reporter);
    }

    /** Reads a prompt file (.txt, .toml or .json by extension); {@code defaults} fill what a prompt leaves out. */
    public static List<SamplePrompt> read(Path file, Defaults defaults, Reporter reporter) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".toml")) {
            return fromToml(file, defaults);
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new InputException(file + ": prompt file is not UTF-8 text");
        } catch (IOException e) {
            throw new InputException(file + ": cannot read prompt file: " + e.getMessage(), e);
        }
        if (name.endsWith(".json")) {
            return fromJson(text, file, defaults);
        }
        return parseText(text, file.toString(), defaults, reporter);
    }

    /** Parses the line format with kohya's defaults; {@code source} names the file in warnings. */
    public static List<SamplePrompt> parseText(String text, String source, String defaultSampler, Reporter reporter) {
        return parseText(text, source, Defaults.kohya(defaultSampler), reporter);
    }

    /** Parses the line format; {@code source} names the file in warnings. */
    public static List<SamplePrompt> parseText(String text, String source, Defaults defaults, Reporter reporter) {
        List<SamplePrompt> out = new ArrayList<>();
        String[] lines = text.split("\r?\n|\r", -1);
        for (int ln = 0; ln < lines.length; ln++) {
            // the reference: [line.strip() for line in lines if len(line.strip()) > 0 and line[0] != "#"]; the
            // '#' test looks at the raw line, so an indented "#..." is a prompt (and takes an index)
            String line = lines[ln].strip();
            if (line.isEmpty() || lines[ln].startsWith("#")) {
                continue;
            }
            String[] parts = line.split(" --", -1);
            String prompt = parts[0];
            String negative = defaults.negativePrompt();
            int width = defaults.width();
            int height = defaults.height();
            Long seed = null;
            int steps = defaults.steps();
            double scale = defaults.scale();
            String sampler = defaults.sampler();
            for (String part : parts) {
                try {
                    Matcher m;
                    if ((m = W.matcher(part)).lookingAt()) {
                        width = Integer.parseInt(m.group(1));
                    } else if ((m = H.matcher(part)).lookingAt()) {
                        height = Integer.parseInt(m.group(1));
                    } else if ((m = D.matcher(part)).lookingAt()) {
                        seed = Long.parseLong(m.group(1));
                    } else if ((m = S.matcher(part)).lookingAt()) {
                        steps = (int) Math.max(1, Math.min(1000, Long.parseLong(m.group(1))));
                    } else if ((m = L.matcher(part)).lookingAt()) {
                        scale = Double.parseDouble(m.group(1));
                    } else if ((m = N.matcher(part)).lookingAt()) {
                        negative = m.group(1);
                    } else if ((m = SS.matcher(part)).lookingAt()) {
                        sampler = m.group(1);
                    } else if (CN.matcher(part).lookingAt()) {
                        reporter.log(Reporter.Level.WARNING, "WARNING: " + source + ":" + (ln + 1)
                                + ": --cn (ControlNet image) is ignored for SDXL samples");
                    }
                } catch (NumberFormatException e) {
                    reporter.log(Reporter.Level.WARNING, "WARNING: " + source + ":" + (ln + 1) + ": cannot read option '--"
                            + part + "'; ignored");
                }
            }
            out.add(new SamplePrompt(out.size(), prompt, negative, round8(width), round8(height), seed, steps, scale,
                    sampler));
        }
        return out;
    }

    /** The reference's {@code max(64, v - v % 8)}. */
    static int round8(int v) {
        return Math.max(64, v - v % 8);
    }

    private static List<SamplePrompt> fromToml(Path file, Defaults defaults) {
        Map<String, Object> doc = Toml.parse(file);
        if (!(doc.get("prompt") instanceof Map<?, ?> prompt)) {
            throw new InputException(file + ": expected a [prompt] table");
        }
        Map<String, Object> tableDefaults = new java.util.LinkedHashMap<>();
        prompt.forEach((k, v) -> tableDefaults.put((String) k, v));
        Object subsets = tableDefaults.remove("subset");
        if (!(subsets instanceof List<?> list)) {
            throw new InputException(file + ": expected [[prompt.subset]] entries");
        }
        List<SamplePrompt> out = new ArrayList<>();
        for (Object o : list) {
            Map<String, Object> entry = new java.util.LinkedHashMap<>(tableDefaults);
            ((Map<?, ?>) o).forEach((k, v) -> entry.put((String) k, v));
            out.add(fromMap(entry, out.size(), file, defaults));
        }
        return out;
    }

    private static List<SamplePrompt> fromJson(String text, Path file, Defaults defaults) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(text);
        } catch (IOException e) {
            throw new InputException(file + ": not valid JSON: " + e.getMessage());
        }
        if (!root.isArray()) {
            throw new InputException(file + ": expected a JSON list of prompt objects");
        }
        List<SamplePrompt> out = new ArrayList<>();
        ObjectMapper mapper = new ObjectMapper();
        for (JsonNode n : root) {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = mapper.convertValue(n, Map.class);
            out.add(fromMap(m, out.size(), file, defaults));
        }
        return out;
    }

    private static SamplePrompt fromMap(Map<String, Object> m, int index, Path file, Defaults d) {
        if (!(m.get("prompt") instanceof String prompt)) {
            throw new InputException(file + ": prompt " + index + " has no \"prompt\" text");
        }
        Object neg = m.getOrDefault("negative_prompt", d.negativePrompt());
        return new SamplePrompt(index, prompt, String.valueOf(neg), round8(intOf(m, "width", d.width(), file)),
                round8(intOf(m, "height", d.height(), file)),
                m.get("seed") == null ? null : (long) intOf(m, "seed", 0, file),
                Math.max(1, Math.min(1000, intOf(m, "sample_steps", d.steps(), file))),
                m.get("scale") instanceof Number s ? s.doubleValue() : d.scale(),
                m.get("sample_sampler") instanceof String s ? s : d.sampler());
    }

    private static int intOf(Map<String, Object> m, String key, int def, Path file) {
        Object v = m.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number n) {
            return n.intValue();
        }
        throw new InputException(file + ": " + key + " must be a number, got " + v);
    }
}
