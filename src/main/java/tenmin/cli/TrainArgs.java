package tenmin.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.Toml;
import tenmin.lora.LoConDropout;
import tenmin.lora.LoConPreset;
import tenmin.sample.ModelSource;
import tenmin.sample.SamplerKind;
import tenmin.train.TrainConfig;
import tenmin.train.data.CaptionOptions;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.noise.LossFunction;
import tenmin.train.noise.LossWeighting;
import tenmin.train.noise.NoiseOptions;
import tenmin.train.optim.Optimizers;
import tenmin.train.schedule.LrSchedule;
import tenmin.train.schedule.StepRules;

/**
 * Turns the reference trainer's command line (argparse conventions: {@code --flag value},
 * {@code --flag=value}, store-true switches, {@code nargs="*"} lists such as {@code --network_args a=1 b=2})
 * and an optional TOML {@code --config_file} into a validated {@link TrainConfig}.
 *
 * <p>Precedence: {@link TrainFlags} defaults, then the config file (its {@code [section]} tables are
 * flattened, as kohya's {@code read_config_from_file} does), then the command line. Unknown flags or keys,
 * bad values and contradictory options are {@link InputException}s naming the flag; flags with no effect
 * here get one WARNING each.
 */
final class TrainArgs {
    /** Where a value came from, for messages. */
    private record Value(Object value, String source) {
    }

    /** The {@code --dataset_config} read, or null. */
    private DatasetConfigFile.Parsed datasetConfig;
    /** With {@code --dataset_config}: the flags before its first dataset's options replaced them (later datasets'). */
    private Map<String, Value> beforeDatasetOptions;
    /** The switches every subset of every dataset must agree on, each with why, in the order they are checked. */
    private static final List<Map.Entry<String, String>> SAME_IN_EVERY_SUBSET = List.of(
            Map.entry("flip_aug", "tenmin flips every image or none"),
            Map.entry("random_crop", "tenmin crops every image at random or none"),
            Map.entry("color_aug", "tenmin colour-augments every image or none"),
            Map.entry("alpha_mask", "tenmin masks the loss of every image or none"));
    /** Per switch of {@link #SAME_IN_EVERY_SUBSET}: the first subset's value and where it came from. */
    private final Map<String, Value> seenInSubsets = new LinkedHashMap<>();

    /** Where the demo writes when no --output_dir is given. */
    static final Path DEMO_OUTPUT = Path.of("tenmin-demo");

    private final Reporter reporter;
    private final LongSupplier randomSeed;
    private final Map<String, Value> given = new LinkedHashMap<>();

    private TrainArgs(Reporter reporter, LongSupplier randomSeed) {
        this.reporter = reporter;
        this.randomSeed = randomSeed;
    }

    /**
     * Parses and validates; {@code randomSeed} supplies the seed when none is given (kohya draws one in
     * [0, 2^32)).
     */
    static TrainConfig parse(List<String> argv, Reporter reporter, LongSupplier randomSeed) {
        TrainArgs a = new TrainArgs(reporter, randomSeed);
        Map<String, Value> cli = a.parseCommandLine(argv);
        Value configFile = cli.get("config_file");
        if (configFile != null) {
            a.given.putAll(a.readConfigFile((String) configFile.value()));
        }
        a.given.putAll(cli);
        a.applyOldSpellings();
        if (a.given.containsKey("dataset_config")) {
            a.applyDatasetConfig();
        } else if (!a.given.containsKey("pretrained_model_name_or_path") && !a.given.containsKey("train_data_dir")) {
            a.applyDemoRecipe();
        }
        return a.build();
    }

    /**
     * {@code --dataset_config}: its first dataset's options replace the flags (the reference's fallback order: subset,
     * dataset, [general], command line); the data directories are ignored, as the reference does, with a warning.
     */
    private void applyDatasetConfig() {
        Value v = given.get("dataset_config");
        datasetConfig = DatasetConfigFile.read(Path.of((String) v.value()));
        List<String> ignored = new ArrayList<>();
        for (String k : List.of("train_data_dir", "reg_data_dir")) {
            if (given.remove(k) != null) {
                ignored.add("--" + k);
            }
        }
        if (!ignored.isEmpty()) {
            reporter.log(Reporter.Level.WARNING, "WARNING: ignoring " + String.join(", ", ignored) + ": --dataset_config"
                    + " names the image folders");
        }
        beforeDatasetOptions = new LinkedHashMap<>(given);
        applyDatasetOptions(datasetConfig.dataset());
    }

    /** A dataset's options in place of the flags they stand for ({@code batch_size} is --train_batch_size). */
    private void applyDatasetOptions(Map<String, DatasetConfigFile.Option> options) {
        for (Map.Entry<String, DatasetConfigFile.Option> e : options.entrySet()) {
            DatasetConfigFile.Option o = e.getValue();
            if (e.getKey().equals("network_multiplier")) {
                if (!(o.value() instanceof Number n && n.doubleValue() == 1.0)) {
                    throw new InputException(o.source() + ": a per-dataset LoRA multiplier is not supported; remove it"
                            + " or set it to 1.0");
                }
                continue;
            }
            String flag = e.getKey().equals("batch_size") ? "train_batch_size" : e.getKey();
            Object value = o.value();
            if (flag.equals("resolution") && value instanceof List<?> wh) {
                if (wh.size() != 2) {
                    throw new InputException(o.source() + ": expected a size or [width, height], got " + value);
                }
                value = wh.get(0) + "," + wh.get(1);
            }
            given.put(flag, new Value(convertToml(TrainFlags.get(flag), value, o.source()), o.source()));
        }
    }

    /**
     * The subsets of a {@code --dataset_config} dataset: image folder, repeats, class tokens, regularisation flag,
     * caption extension and caption processing, each option from the subset, its dataset, [general] or the command
     * line. A subset option tenmin does not implement must have its neutral value; all subsets of all datasets must
     * agree on flip_aug (the latent cache flips every image or none), alpha_mask, random_crop and color_aug, which
     * then become the run's.
     */
    private List<DreamBoothDataset.SubsetSpec> datasetSubsets(List<Map<String, DatasetConfigFile.Option>> subsets) {
        List<DreamBoothDataset.SubsetSpec> out = new ArrayList<>();
        for (Map<String, DatasetConfigFile.Option> options : subsets) {
            Map<String, Value> saved = new LinkedHashMap<>(given);
            try {
                for (Map.Entry<String, DatasetConfigFile.Option> e : options.entrySet()) {
                    TrainFlags.Flag f = TrainFlags.get(e.getKey());
                    if (f == null || e.getKey().equals("conditioning_data_dir")) {
                        continue;                                   // image_dir, num_repeats, class_tokens, ...
                    }
                    Object value = convertToml(f, e.getValue().value(), e.getValue().source());
                    if (f.effect() == TrainFlags.Effect.NEUTRAL_ONLY && !isNeutral(f, value)) {
                        throw new InputException(e.getValue().source() + ": not supported by tenmin (" + f.help()
                                + ")");
                    }
                    given.put(f.name(), new Value(value, e.getValue().source()));
                }
                for (Map.Entry<String, String> e : SAME_IN_EVERY_SUBSET) {
                    seenInSubsets.put(e.getKey(), sameInEverySubset(e.getKey(), seenInSubsets.get(e.getKey()),
                            e.getValue()));
                }
                DatasetConfigFile.Option dir = options.get("image_dir");
                Path imageDir = Path.of((String) dir.value());
                // the reference's last fallback for num_repeats is --dataset_repeats (default 1)
                int repeats = intIn("dataset_repeats", 1, 1_000_000);
                DatasetConfigFile.Option n = options.get("num_repeats");
                if (n != null) {
                    if (!(n.value() instanceof Long r) || r < 1 || r > 1_000_000) {
                        throw new InputException(n.source() + ": expected a whole number of at least 1, got " + n.value());
                    }
                    repeats = r.intValue();
                }
                DatasetConfigFile.Option cond = options.get("conditioning_data_dir");
                Path condDir = null;
                if (cond != null) {
                    if (!(cond.value() instanceof String s) || !Files.isDirectory(Path.of(s))) {
                        throw new InputException(cond.source() + ": " + cond.value() + " is not a folder");
                    }
                    condDir = Path.of(s);
                }
                DatasetConfigFile.Option tokens = options.get("class_tokens");
                DatasetConfigFile.Option reg = options.get("is_reg");
                if (reg != null && !(reg.value() instanceof Boolean)) {
                    throw new InputException(reg.source() + ": expected true or false, got " + reg.value());
                }
                out.add(new DreamBoothDataset.SubsetSpec(imageDir, imageDir.getFileName() == null ? imageDir.toString()
                        : imageDir.getFileName().toString(), repeats, tokens == null ? "" : String.valueOf(tokens.value()),
                        reg != null && (Boolean) reg.value(), captionExtension(), captionOptions(), condDir));
            } finally {
                given.clear();
                given.putAll(saved);
            }
        }
        given.putAll(seenInSubsets);
        return out;
    }

    /**
     * The second and later datasets of the {@code --dataset_config}: each one's options fall back to [general] and
     * then to the command line (not to the first dataset's), as the reference's {@code generate_params_by_fallbacks}.
     */
    private List<TrainConfig.Dataset> laterDatasets() {
        List<TrainConfig.Dataset> out = new ArrayList<>();
        if (datasetConfig == null) {
            return out;
        }
        List<DatasetConfigFile.Dataset> all = datasetConfig.datasets();
        for (DatasetConfigFile.Dataset ds : all.subList(1, all.size())) {
            Map<String, Value> saved = new LinkedHashMap<>(given);
            try {
                given.clear();
                given.putAll(beforeDatasetOptions);
                applyDatasetOptions(ds.options());
                out.add(datasetSettings(datasetConfig.file() + ": " + ds.label() + ": ", datasetSubsets(ds.subsets())));
            } finally {
                given.clear();
                given.putAll(saved);
            }
        }
        return out;
    }

    /**
     * The resolution, bucket and batch-size flags as they stand, checked, with {@code subsets}; {@code where} heads
     * the messages that name no single option ("" for the first dataset).
     */
    private TrainConfig.Dataset datasetSettings(String where, List<DreamBoothDataset.SubsetSpec> subsets) {
        int[] reso = resolution();
        int steps = intIn("bucket_reso_steps", 8, 4096);
        if (steps % 8 != 0) {
            throw bad("bucket_reso_steps", steps + " must be a multiple of 8 (the VAE's latent grid)");
        }
        int minReso = intIn("min_bucket_reso", 64, 16384);
        int maxReso = intIn("max_bucket_reso", 64, 16384);
        if (minReso > maxReso) {
            throw new InputException(where + "--min_bucket_reso " + minReso + " is larger than --max_bucket_reso "
                    + maxReso);
        }
        boolean enableBucket = bool("enable_bucket");
        if (enableBucket && (Math.min(reso[0], reso[1]) < minReso || Math.max(reso[0], reso[1]) > maxReso)) {
            throw new InputException(where + "--resolution " + reso[0] + "," + reso[1] + " lies outside the bucket range ["
                    + minReso + ", " + maxReso + "] (--min_bucket_reso/--max_bucket_reso)");
        }
        return new TrainConfig.Dataset(reso[0], reso[1], enableBucket, minReso, maxReso, steps,
                bool("bucket_no_upscale"), intIn("train_batch_size", 1, 4096), subsets);
    }

    /** The value of switch {@code flag} in this subset, which must be {@code before}'s (an earlier subset's) if any. */
    private Value sameInEverySubset(String flag, Value before, String why) {
        Value now = new Value(bool(flag), where(flag));
        if (before != null && !before.value().equals(now.value())) {
            throw new InputException(now.source() + " is " + now.value() + " but " + before.source() + " is "
                    + before.value() + ": " + why);
        }
        return now;
    }

    /**
     * {@code --masked_loss}: the reference reads the masks from the {@code conditioning_data_dir} of every subset of a
     * {@code --dataset_config} (ControlNet-style subsets); with a subset lacking one it trains without masks and says
     * nothing, so here that is an error, as is a {@code conditioning_data_dir} without {@code --masked_loss} (the
     * reference's schema refuses it then).
     */
    private boolean maskedLoss(List<DreamBoothDataset.SubsetSpec> subsets) {
        boolean on = bool("masked_loss");
        long withMasks = subsets.stream().filter(s -> s.conditioningDir() != null).count();
        if (!on) {
            if (withMasks > 0) {
                throw new InputException("--dataset_config: conditioning_data_dir is read with --masked_loss only");
            }
            return false;
        }
        if (subsets.isEmpty() || withMasks < subsets.size()) {
            throw bad("masked_loss", "needs a --dataset_config whose every subset has a conditioning_data_dir (the"
                    + " folder of the loss masks; for masks in the images' own alpha use --alpha_mask)");
        }
        for (String other : List.of("alpha_mask", "random_crop")) {
            if (bool(other)) {
                throw new InputException("--masked_loss and --" + other + " exclude each other"
                        + (other.equals("random_crop") ? " (the masks are centre-cropped, as in the reference)" : ""));
            }
        }
        return true;
    }

    /** {@code --caption_extension} with its leading dot. */
    private String captionExtension() {
        String ext = str("caption_extension");
        if (ext == null || ext.isBlank()) {
            throw bad("caption_extension", "must not be empty");
        }
        return ext.startsWith(".") ? ext : "." + ext;
    }

    /**
     * {@code --output_config} (the reference's {@code read_config_from_file}): the command line's flags that differ
     * from their defaults, except {@code config_file}, {@code output_config} and {@code wandb_api_key}, written as
     * TOML to the {@code --config_file} path ({@code .toml} added when missing), which must not exist yet; nothing
     * is trained. The file is read back by {@code --config_file}, here and by the reference.
     *
     * @return the file written
     */
    static Path writeConfig(List<String> argv, Reporter reporter) throws java.io.IOException {
        TrainArgs a = new TrainArgs(reporter, () -> 0L);
        Map<String, Value> cli = a.parseCommandLine(argv);
        Value target = cli.get("config_file");
        if (target == null) {
            throw new InputException("--output_config writes the file --config_file names; give --config_file FILE.toml");
        }
        String text = (String) target.value();
        Path path = Path.of(text.endsWith(".toml") ? text : text + ".toml");
        if (Files.exists(path)) {
            throw new InputException("--config_file " + path + " already exists; --output_config does not overwrite it");
        }
        StringBuilder toml = new StringBuilder();
        for (Map.Entry<String, Value> e : cli.entrySet()) {
            String name = e.getKey();
            Object v = e.getValue().value();
            if (List.of("config_file", "output_config", "wandb_api_key").contains(name)
                    || java.util.Objects.equals(v, TrainFlags.get(name).def())) {
                continue;
            }
            toml.append(name).append(" = ").append(tomlValue(v)).append('\n');
        }
        tenmin.formats.AtomicFile.write(path, toml.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return path;
    }

    private static String tomlValue(Object v) {
        return switch (v) {
            case String s -> tomlString(s);
            case Double d -> tenmin.core.PyFormat.repr(d);
            case List<?> l -> {
                List<String> items = new ArrayList<>();
                for (Object o : l) {
                    items.add(tomlString(String.valueOf(o)));
                }
                yield "[" + String.join(", ", items) + "]";
            }
            default -> String.valueOf(v);                       // Long, Boolean
        };
    }

    private static String tomlString(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                case '\r' -> sb.append("\\r");
                default -> {
                    if (c < 0x20 || c == 0x7f) {
                        sb.append(String.format(Locale.ROOT, "\\u%04X", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }

    /** The built-in demo: {@link TrainFlags#DEMO} for every flag the user did not give. */
    private void applyDemoRecipe() {
        for (Map.Entry<String, Object> e : TrainFlags.DEMO.entrySet()) {
            given.putIfAbsent(e.getKey(), new Value(e.getValue(), "the demo's --" + e.getKey()));
        }
        if (!given.containsKey("logging_dir")) {
            Path out = given.containsKey("output_dir") ? Path.of((String) given.get("output_dir").value()) : DEMO_OUTPUT;
            given.put("logging_dir", new Value(out.resolve("logs").toString(), "the demo's --logging_dir"));
        }
    }

    // ---------------------------------------------------------------- command line

    private Map<String, Value> parseCommandLine(List<String> argv) {
        Map<String, Value> out = new LinkedHashMap<>();
        for (int i = 0; i < argv.size(); i++) {
            String arg = argv.get(i);
            if (arg.equals("--verbose")) {
                continue; // tenmin's global switch (Main)
            }
            if (!arg.startsWith("--") || arg.length() == 2) {
                throw new InputException("unexpected argument '" + arg + "': train takes only --flag arguments"
                        + (i > 0 ? " (after " + argv.get(i - 1) + ")" : ""));
            }
            String body = arg.substring(2);
            String inline = null;
            int eq = body.indexOf('=');
            if (eq >= 0) {
                inline = body.substring(eq + 1);
                body = body.substring(0, eq);
            }
            String name = body.replace('-', '_');
            TrainFlags.Flag f = TrainFlags.get(name);
            if (f == null) {
                throw new InputException("unknown flag --" + body + hint(name));
            }
            String src = "--" + name;
            Object value;
            switch (f.kind()) {
                case BOOL -> {
                    if (inline != null) {
                        throw new InputException(src + " is a switch and takes no value (got '" + inline + "')");
                    }
                    value = Boolean.TRUE;
                }
                case LIST -> {
                    List<String> items = new ArrayList<>();
                    if (inline != null) {
                        items.add(inline);
                    }
                    while (i + 1 < argv.size() && !argv.get(i + 1).startsWith("--")) {
                        items.add(argv.get(++i));
                    }
                    value = items;
                }
                default -> {
                    String text = inline;
                    if (text == null) {
                        if (i + 1 >= argv.size() || argv.get(i + 1).startsWith("--")) {
                            throw new InputException(src + " needs a value");
                        }
                        text = argv.get(++i);
                    }
                    value = convertText(f, text, src);
                }
            }
            out.put(name, new Value(value, src));
        }
        return out;
    }

    private static Object convertText(TrainFlags.Flag f, String text, String src) {
        String t = text.strip();
        try {
            return switch (f.kind()) {
                case INT -> Long.parseLong(t.startsWith("+") ? t.substring(1) : t);
                case FLOAT -> Double.parseDouble(t);
                default -> text;
            };
        } catch (NumberFormatException e) {
            throw new InputException(src + ": expected " + (f.kind() == TrainFlags.Kind.INT ? "an integer" : "a number")
                    + ", got '" + text + "'");
        }
    }

    /** A "did you mean" for near misses (a typo'd flag is the common case). */
    private static String hint(String name) {
        String best = null;
        int bestDist = Integer.MAX_VALUE;
        for (TrainFlags.Flag f : TrainFlags.ALL) {
            int d = distance(name, f.name());
            if (d < bestDist) {
                bestDist = d;
                best = f.name();
            }
        }
        return best != null && bestDist <= Math.max(2, name.length() / 5) ? " (did you mean --" + best + "?)"
                : " (tenmin train --help lists the flags)";
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    // ---------------------------------------------------------------- config file

    private Map<String, Value> readConfigFile(String pathText) {
        Path path = Path.of(pathText);
        if (!pathText.endsWith(".toml") && !Files.exists(path)) {
            path = Path.of(pathText + ".toml"); // kohya appends the extension when it is missing
        }
        if (!Files.isRegularFile(path)) {
            throw new InputException("--config_file: " + path + " does not exist");
        }
        Map<String, Object> doc = Toml.parse(path);
        Map<String, Object> flat = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : doc.entrySet()) {
            if (e.getValue() instanceof Map<?, ?> section) {
                for (Map.Entry<?, ?> kv : section.entrySet()) {
                    String key = (String) kv.getKey();
                    if (kv.getValue() instanceof Map<?, ?>) {
                        throw new InputException(path + ": [" + e.getKey() + "." + key + "]: only one level of"
                                + " [section] tables is read");
                    }
                    if (flat.put(key, kv.getValue()) != null) {
                        throw new InputException(path + ": key " + key + " appears in more than one section");
                    }
                }
            } else if (flat.put(e.getKey(), e.getValue()) != null) {
                throw new InputException(path + ": key " + e.getKey() + " appears in more than one section");
            }
        }
        Map<String, Value> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : flat.entrySet()) {
            String src = path + ": " + e.getKey();
            TrainFlags.Flag f = TrainFlags.get(e.getKey());
            if (f == null) {
                throw new InputException(path + ": unknown key " + e.getKey() + hint(e.getKey()));
            }
            if (f.name().equals("config_file")) {
                throw new InputException(src + ": a config file cannot name another config file");
            }
            out.put(f.name(), new Value(convertToml(f, e.getValue(), src), src));
        }
        return out;
    }

    private static Object convertToml(TrainFlags.Flag f, Object v, String src) {
        switch (f.kind()) {
            case BOOL:
                if (v instanceof Boolean) {
                    return v;
                }
                break;
            case INT:
                if (v instanceof Long) {
                    return v;
                }
                if (v instanceof Double d && d == Math.rint(d) && !Double.isInfinite(d)) {
                    return d.longValue();
                }
                break;
            case FLOAT:
                if (v instanceof Number n) {
                    return n.doubleValue();
                }
                break;
            case STRING:
                if (v instanceof String || v instanceof Number) {
                    return v.toString();
                }
                break;
            case LIST:
                if (v instanceof String s) {
                    return List.of(s);
                }
                if (v instanceof List<?> l) {
                    List<String> items = new ArrayList<>();
                    for (Object o : l) {
                        if (o instanceof String || o instanceof Number || o instanceof Boolean) {
                            items.add(o.toString());
                        } else {
                            throw new InputException(src + ": list items must be strings, got " + o);
                        }
                    }
                    return items;
                }
                break;
            default:
                break;
        }
        String want = switch (f.kind()) {
            case BOOL -> "true or false";
            case INT -> "an integer";
            case FLOAT -> "a number";
            case STRING -> "a string";
            case LIST -> "a list of strings";
        };
        throw new InputException(src + ": expected " + want + ", got " + v);
    }

    // ---------------------------------------------------------------- typed config

    private Object raw(String name) {
        Value v = given.get(name);
        if (v != null) {
            return v.value();
        }
        TrainFlags.Flag f = TrainFlags.get(name);
        if (f == null) {
            throw new IllegalStateException("flag not in table: " + name);
        }
        return f.def();
    }

    private String where(String name) {
        Value v = given.get(name);
        return v == null ? "--" + name : v.source();
    }

    private boolean isGiven(String name) {
        return given.containsKey(name);
    }

    private boolean bool(String name) {
        return (Boolean) raw(name);
    }

    private String str(String name) {
        return (String) raw(name);
    }

    private Long longOrNull(String name) {
        return (Long) raw(name);
    }

    private Double dblOrNull(String name) {
        return (Double) raw(name);
    }

    private int intIn(String name, long min, long max) {
        Long v = longOrNull(name);
        long x = v == null ? 0 : v;
        if (x < min || x > max) {
            throw new InputException(where(name) + ": " + x + " is out of range [" + min + ", " + max + "]");
        }
        return (int) x;
    }

    /**
     * {@code --base_weights} with {@code --base_weights_multiplier}: kohya takes the i-th multiplier for the i-th file
     * and 1.0 where the list is shorter; a multiplier without a file is refused here.
     */
    private List<tenmin.sample.LoraSpec> baseWeights() {
        List<String> files = list("base_weights");
        List<String> multipliers = list("base_weights_multiplier");
        if (multipliers.size() > files.size()) {
            throw bad("base_weights_multiplier", multipliers.size() + " multipliers for " + files.size()
                    + " --base_weights files");
        }
        List<tenmin.sample.LoraSpec> out = new ArrayList<>();
        for (int i = 0; i < files.size(); i++) {
            Path file = Path.of(files.get(i));
            if (!Files.isRegularFile(file)) {
                throw bad("base_weights", file + " does not exist");
            }
            double m = 1.0;
            if (i < multipliers.size()) {
                Double parsed = tenmin.lora.PythonFloat.parse(multipliers.get(i));
                if (parsed == null || !Double.isFinite(parsed)) {
                    throw bad("base_weights_multiplier", "'" + multipliers.get(i) + "' is not a finite number");
                }
                m = parsed;
            }
            out.add(new tenmin.sample.LoraSpec(file, m, null));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private List<String> list(String name) {
        return (List<String>) raw(name);
    }

    /** {@code --checkpointing}: null (from --gradient_checkpointing: auto, or none without it), auto, all, none or a block list. */
    private String checkpointing() {
        String spec = str("checkpointing");
        if (spec == null) {
            return null;
        }
        if (tenmin.models.sdxl.CheckpointPolicy.isAuto(spec)) {
            return tenmin.models.sdxl.CheckpointPolicy.AUTO;
        }
        try {
            return tenmin.models.sdxl.CheckpointPolicy.parse(spec).toString();
        } catch (IllegalArgumentException e) {
            throw bad("checkpointing", e.getMessage());
        }
    }

    private InputException bad(String name, String what) {
        return new InputException(where(name) + ": " + what);
    }

    /**
     * The reference's deprecated flags, resolved as it does ({@code train_util.verify_training_args},
     * {@code prepare_dataset_args}): {@code --caption_extention} replaces {@code --caption_extension};
     * {@code --use_8bit_adam} / {@code --use_lion_optimizer} stand for an optimizer type and exclude each other and
     * an explicit {@code --optimizer_type}.
     */
    private void applyOldSpellings() {
        Value oldExt = given.remove("caption_extention");
        if (oldExt != null && oldExt.value() != null) {
            given.put("caption_extension", oldExt);
        }
        Value adam8 = given.get("use_8bit_adam");
        Value lion = given.get("use_lion_optimizer");
        boolean useAdam8 = adam8 != null && Boolean.TRUE.equals(adam8.value());
        boolean useLion = lion != null && Boolean.TRUE.equals(lion.value());
        if (useAdam8 && useLion) {
            throw new InputException("--use_8bit_adam and --use_lion_optimizer exclude each other");
        }
        if ((useAdam8 || useLion) && given.containsKey("optimizer_type")
                && !String.valueOf(given.get("optimizer_type").value()).isEmpty()) {
            throw new InputException((useAdam8 ? "--use_8bit_adam" : "--use_lion_optimizer") + " and --optimizer_type"
                    + " exclude each other (use --optimizer_type alone)");
        }
        if (useAdam8 || useLion) {
            given.put("optimizer_type", new Value(useAdam8 ? "AdamW8bit" : "Lion",
                    (useAdam8 ? adam8 : lion).source()));
        }
    }

    private TrainConfig build() {
        checkEffects();

        // ---- paths
        Path model = pathOrNull("pretrained_model_name_or_path");
        Path data = pathOrNull("train_data_dir");
        String randomModel = str("random_model");
        if (randomModel != null) {
            if (model != null) {
                throw new InputException("--random_model and --pretrained_model_name_or_path exclude each other");
            }
            if (data == null && datasetConfig == null) {
                throw new InputException("--random_model needs --train_data_dir");
            }
            try {
                ModelSource.randomConfig(randomModel);
            } catch (InputException e) {
                throw bad("random_model", "'" + randomModel + "': expected one of "
                        + String.join(", ", ModelSource.RANDOM_SIZES));
            }
            if (data != null && !Files.isDirectory(data)) {
                throw bad("train_data_dir", data + " is not a folder");
            }
        } else if (datasetConfig != null && model == null) {
            throw new InputException("--dataset_config given without --pretrained_model_name_or_path");
        } else if (datasetConfig == null && (model == null) != (data == null)) {
            throw new InputException(model == null
                    ? "--train_data_dir given without --pretrained_model_name_or_path (give both, or neither for the built-in demo)"
                    : "--pretrained_model_name_or_path given without --train_data_dir (give both, or neither for the built-in demo)");
        }
        if (model != null) {
            if (Files.isDirectory(model)) {
                throw bad("pretrained_model_name_or_path", model + " is a folder; tenmin reads single-file SDXL checkpoints (.safetensors)");
            }
            if (!Files.isRegularFile(model)) {
                throw bad("pretrained_model_name_or_path", model + " does not exist");
            }
            if (data != null && !Files.isDirectory(data)) {
                throw bad("train_data_dir", data + " is not a folder");
            }
        }
        Path outputDir = pathOrNull("output_dir");
        if (outputDir == null) {
            if (model != null || randomModel != null) {
                throw new InputException("--output_dir is required (the reference crashes at its first save without it)");
            }
            outputDir = DEMO_OUTPUT;
        }
        if (Files.exists(outputDir) && !Files.isDirectory(outputDir)) {
            throw bad("output_dir", outputDir + " exists and is not a folder");
        }
        String outputName = str("output_name");
        if (outputName != null && (outputName.isBlank() || outputName.contains("/") || outputName.contains("\\"))) {
            throw bad("output_name", "'" + outputName + "' must be a plain file name");
        }
        Path resume = pathOrNull("resume");
        if (resume != null && !Files.exists(resume)) {
            throw bad("resume", resume + " does not exist");
        }
        Path networkWeights = pathOrNull("network_weights");
        if (networkWeights != null && !Files.isRegularFile(networkWeights)) {
            throw bad("network_weights", networkWeights + " does not exist");
        }
        Path modelConfig = pathOrNull("model_config");
        if (modelConfig != null && !Files.isRegularFile(modelConfig)) {
            throw bad("model_config", modelConfig + " does not exist");
        }
        if (modelConfig != null && model == null) {
            throw new InputException("--model_config describes a checkpoint; give --pretrained_model_name_or_path too");
        }
        Path regData = pathOrNull("reg_data_dir");
        if (regData != null && !Files.isDirectory(regData)) {
            throw bad("reg_data_dir", regData + " is not a folder");
        }
        if (regData != null && data == null) {
            throw new InputException("--reg_data_dir needs --train_data_dir (the built-in demo has no regularisation"
                    + " images)");
        }
        Path vae = pathOrNull("vae");
        if (vae != null && Files.isDirectory(vae)) {
            throw bad("vae", vae + " is a folder (a diffusers VAE?); tenmin reads single-file VAEs in the LDM layout,"
                    + " such as sdxl_vae.safetensors");
        }
        if (vae != null && !Files.isRegularFile(vae)) {
            throw bad("vae", vae + " does not exist (tenmin reads local single-file VAEs)");
        }
        if (vae != null && model == null) {
            throw new InputException("--vae replaces the VAE of --pretrained_model_name_or_path; give that too");
        }
        TrainConfig.Paths paths = new TrainConfig.Paths(model, vae, data, regData, outputDir, outputName, resume,
                networkWeights, modelConfig, randomModel, baseWeights());

        // ---- data
        TrainConfig.Dataset first = datasetSettings("", List.of());
        String ext = captionExtension();
        CaptionOptions captions = captionOptions();
        List<DreamBoothDataset.SubsetSpec> subsets = datasetConfig == null ? List.of()
                : datasetSubsets(datasetConfig.datasets().get(0).subsets());
        List<TrainConfig.Dataset> later = laterDatasets();
        List<DreamBoothDataset.SubsetSpec> allSubsets = new ArrayList<>(subsets);
        for (TrainConfig.Dataset d : later) {
            allSubsets.addAll(d.subsets());
        }
        if (datasetConfig == null && isGiven("dataset_repeats")) {
            reporter.log(Reporter.Level.WARNING, "WARNING: --dataset_repeats has no effect without --dataset_config:"
                    + " repeats come from the folder names (<repeats>_<name>), as in the reference");
        }
        boolean toDisk = bool("cache_latents_to_disk");
        boolean cached = bool("cache_latents") || toDisk;
        for (String aug : List.of("random_crop", "color_aug")) {
            if (bool(aug) && cached) {
                // the reference: "when caching latents, either color_aug or random_crop cannot be used"
                throw new InputException(where(aug) + " changes every draw of an image: it cannot be used with"
                        + " --cache_latents" + (toDisk ? "_to_disk" : "") + " (cached latents are one crop and colouring)");
            }
            if (bool(aug) && bool("alpha_mask")) {
                throw new InputException(where(aug) + " with --alpha_mask is not supported by tenmin (the masks are"
                        + " read once, centre-cropped)");
            }
        }
        boolean maskedLoss = maskedLoss(allSubsets);
        TrainConfig.Data dataCfg = new TrainConfig.Data(first.width(), first.height(), first.enableBucket(),
                first.minBucketReso(), first.maxBucketReso(), first.bucketResoSteps(), first.bucketNoUpscale(), ext,
                captions, subsets, cacheTextEncoderOutputs(captions, allSubsets), maxTokenLength(),
                bool("flip_aug"), bool("alpha_mask"), maskedLoss, bool("random_crop"), bool("color_aug"),
                cached, toDisk, intIn("vae_batch_size", 1, 1024), bool("strict"), later);

        // ---- network
        TrainConfig.Network network = network();

        // ---- optimizer
        String optFlag = str("optimizer_type");
        String optType = Optimizers.canonicalType(optFlag);
        if (Optimizers.isEightBitAlias(optFlag)) {
            reporter.log(Reporter.Level.WARNING, "WARNING: --optimizer_type=" + optFlag + " runs as " + optType
                    + " with fp32 state (tenmin has no 8-bit optimizers)");
        }
        Map<String, Object> optArgs = keyValues("optimizer_args");
        Optimizers.create(optType, optArgs); // validates the arguments now, before any work
        double lr = positive("learning_rate", dblOrNull("learning_rate"));
        double unetLr = dblOrNull("unet_lr") == null ? lr : nonNegative("unet_lr", dblOrNull("unet_lr"));
        double teLr = dblOrNull("text_encoder_lr") == null ? lr : nonNegative("text_encoder_lr", dblOrNull("text_encoder_lr"));
        Double maxNorm = dblOrNull("scale_weight_norms");           // kohya: None or 0 is off
        TrainConfig.Optim optim = new TrainConfig.Optim(optType, optArgs, lr, unetLr, teLr,
                nonNegative("max_grad_norm", dblOrNull("max_grad_norm")),
                maxNorm == null ? 0 : nonNegative("scale_weight_norms", maxNorm));

        // ---- schedule
        TrainConfig.Schedule schedule = schedule(lr);

        // ---- loop
        long maxSteps = longOrNull("max_train_steps");
        if (maxSteps < 1) {
            throw bad("max_train_steps", "must be at least 1, got " + maxSteps);
        }
        int maxEpochs = longOrNull("max_train_epochs") == null ? 0 : intIn("max_train_epochs", 1, 1_000_000);
        boolean seedGiven = longOrNull("seed") != null;
        long seed = seedGiven ? longOrNull("seed") : randomSeed.getAsLong();
        String mp = choice("mixed_precision", "no", "fp16", "bf16");
        boolean fp8Base = bool("fp8_base");
        if (fp8Base && mp.equals("no")) {
            // the reference's assertion: the fp8 weights are cast to the mixed-precision dtype where they are used
            throw bad("fp8_base", "needs --mixed_precision fp16 or bf16, got no");
        }
        // kohya's defaults are None (0 and 1000 in effect); the flags map keeps None so that the metadata
        // writes modelspec.timestep_range only when one was given
        int minT = longOrNull("min_timestep") == null ? 0 : intIn("min_timestep", 0, 999);
        int maxT = longOrNull("max_timestep") == null ? 1000 : intIn("max_timestep", 1, 1000);
        if (minT >= maxT) {
            throw new InputException("--min_timestep " + minT + " must be smaller than --max_timestep " + maxT);
        }
        NoiseOptions noise = noiseOptions();
        Double snrGamma = dblOrNull("min_snr_gamma");
        double minSnrGamma = snrGamma == null ? 0 : nonNegative("min_snr_gamma", snrGamma);
        LossFunction lossFunction = lossFunction();
        boolean vPrediction = vPrediction();
        TrainConfig.Loop loop = new TrainConfig.Loop(intIn("train_batch_size", 1, 4096),
                intIn("gradient_accumulation_steps", 1, 100_000), maxSteps, maxEpochs, seed, seedGiven, mp, fp8Base,
                bool("gradient_checkpointing"), bool("no_half_vae"), minT, maxT, noise, checkpointing(),
                new LossWeighting(minSnrGamma, bool("debiased_estimation_loss"),
                        nonNegative("prior_loss_weight", dblOrNull("prior_loss_weight")), vPrediction,
                        bool("scale_v_pred_loss_like_noise_pred"), vPredLikeLoss()), lossFunction, vPrediction);

        // ---- saving
        // fp16 unless asked otherwise: what the guide and the UIs use (kohya's own default is float)
        String precision = str("save_precision") == null ? "fp16" : choice("save_precision", "float", "fp16", "bf16");
        String format = str("save_model_as");
        if (!format.equals("safetensors")) {
            throw bad("save_model_as", "'" + format + "' is not supported; tenmin writes safetensors");
        }
        Map<String, String> modelspec = new LinkedHashMap<>();
        for (String k : List.of("title", "author", "description", "license", "tags")) {
            if (str("metadata_" + k) != null) {
                modelspec.put(k, str("metadata_" + k));
            }
        }
        TrainConfig.Save save = new TrainConfig.Save(precision, optionalCount("save_every_n_steps"),
                optionalCount("save_every_n_epochs"), optionalCount("save_last_n_steps"),
                optionalCount("save_last_n_epochs"), optionalCount("save_last_n_steps_state"),
                optionalCount("save_last_n_epochs_state"), optionalCount("save_n_epoch_ratio"), bool("save_state"),
                bool("no_metadata"),
                str("training_comment"), modelspec);

        // ---- logging
        String logWith = str("log_with");
        Path loggingDir = pathOrNull("logging_dir");
        if (logWith != null && !logWith.equals("tensorboard")) {
            throw bad("log_with", "'" + logWith + "' is not supported; tenmin logs to tensorboard");
        }
        if (logWith != null && loggingDir == null) {
            throw new InputException("--log_with=tensorboard needs --logging_dir");
        }
        String tracker = str("log_tracker_name") == null ? "network_train" : str("log_tracker_name");
        TrainConfig.Log log = new TrainConfig.Log(loggingDir != null, loggingDir,
                str("log_prefix") == null ? "" : str("log_prefix"), tracker, bool("reference_lr_tags"));

        // ---- sampling
        Path prompts = pathOrNull("sample_prompts");
        if (prompts != null && !Files.isRegularFile(prompts)) {
            throw bad("sample_prompts", prompts + " does not exist");
        }
        String sampler = str("sample_sampler");
        try {
            SamplerKind.parse(sampler);
        } catch (InputException e) {
            throw bad("sample_sampler", "'" + sampler + "' is not a sampler tenmin has; use euler_a (the guide's),"
                    + " k_euler_a, euler, k_euler, ddim or dpmsolver++ (DPM++ 2M)");
        }
        int sampleSteps = optionalCount("sample_every_n_steps");
        int sampleEpochs = optionalCount("sample_every_n_epochs");
        boolean demo = model == null && randomModel == null;
        if (prompts == null && !demo && (sampleSteps > 0 || sampleEpochs > 0 || bool("sample_at_first"))) {
            reporter.log(Reporter.Level.WARNING, "WARNING: sampling was asked for but --sample_prompts is not given:"
                    + " no samples will be made");
        }
        TrainConfig.Sample sample = new TrainConfig.Sample(prompts, sampler,
                sampleSteps, sampleEpochs, bool("sample_at_first"));

        Map<String, Object> flags = new LinkedHashMap<>();
        for (TrainFlags.Flag f : TrainFlags.ALL) {
            flags.put(f.name(), raw(f.name()));
        }
        flags.put("seed", seed);
        return new TrainConfig(paths, dataCfg, network, optim, schedule, loop, save, log, sample, compute(), flags);
    }

    private TrainConfig.Compute compute() {
        String d = str("device").strip();
        tenmin.engine.api.Device device;
        try {
            device = d.equals("auto") ? null : tenmin.engine.api.Device.parse(d);
        } catch (IllegalArgumentException e) {
            throw bad("device", "'" + d + "' is not cpu, cuda, cuda:N or auto");
        }
        return new TrainConfig.Compute(device, intIn("cpu_threads", 0, 4096));
    }

    /** One WARNING per given flag that does nothing here; an error for unimplemented features set away from neutral. */
    private void checkEffects() {
        for (Map.Entry<String, Value> e : given.entrySet()) {
            TrainFlags.Flag f = TrainFlags.get(e.getKey());
            if (f.effect() == TrainFlags.Effect.NO_EFFECT) {
                reporter.log(Reporter.Level.WARNING, "WARNING: --" + f.name() + " has no effect in tenmin: " + f.help());
            } else if (f.effect() == TrainFlags.Effect.NEUTRAL_ONLY && !isNeutral(f, e.getValue().value())) {
                throw new InputException(e.getValue().source() + ": not supported by tenmin (" + f.help() + ");"
                        + " remove it" + (f.def() == null || f.def() instanceof List ? "" : " or set it to " + f.def()));
            }
        }
    }

    private static boolean isNeutral(TrainFlags.Flag f, Object v) {
        if (v == null || v.equals(f.def())) {
            return true;
        }
        if (f.def() == null) {
            return v instanceof Number n && n.doubleValue() == 0; // e.g. --min_snr_gamma=0 means off
        }
        return f.def() instanceof Double d && v instanceof Number n && n.doubleValue() == d;
    }

    private Path pathOrNull(String name) {
        String s = str(name);
        if (s == null) {
            return null;
        }
        if (s.isBlank()) {
            throw bad(name, "empty path");
        }
        try {
            return Path.of(s);
        } catch (java.nio.file.InvalidPathException e) {
            throw bad(name, "invalid path '" + s + "'");
        }
    }

    private String nonEmpty(String name) {
        String s = str(name);
        if (s == null || s.isEmpty()) {
            throw bad(name, "must not be empty");
        }
        return s;
    }

    private int optionalCount(String name) {
        Long v = longOrNull(name);
        if (v == null) {
            return 0;
        }
        if (v < 1) {
            throw bad(name, "must be at least 1, got " + v);
        }
        return (int) Math.min(v, Integer.MAX_VALUE);
    }

    private double positive(String name, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw bad(name, "must be a positive number, got " + v);
        }
        return v;
    }

    /**
     * {@code --v_parameterization}, with the reference's checks of the flags that go with it: scaling the loss like
     * noise prediction needs it, the v-prediction-like loss excludes it, and zero terminal SNR without it warns.
     */
    private boolean vPrediction() {
        boolean v = bool("v_parameterization");
        if (bool("scale_v_pred_loss_like_noise_pred") && !v) {
            throw bad("scale_v_pred_loss_like_noise_pred", "needs --v_parameterization");
        }
        if (vPredLikeLoss() != 0 && v) {
            throw bad("v_pred_like_loss", "cannot be used with --v_parameterization (the loss is already v-prediction's)");
        }
        if (bool("zero_terminal_snr") && !v) {
            reporter.log(Reporter.Level.WARNING, "WARNING: --zero_terminal_snr without --v_parameterization: an"
                    + " epsilon-prediction model cannot predict the pure noise of the last timestep (the reference warns"
                    + " too)");
        }
        return v;
    }

    private double vPredLikeLoss() {
        Double v = dblOrNull("v_pred_like_loss");
        return v == null ? 0 : v;
    }

    /** {@code --loss_type}, {@code --huber_schedule}, {@code --huber_c} (kohya's choices; c in (0, 1]). */
    private LossFunction lossFunction() {
        LossFunction.Type type = LossFunction.Type.valueOf(choice("loss_type", "l2", "huber", "smooth_l1")
                .toUpperCase(Locale.ROOT));
        LossFunction.Schedule schedule = LossFunction.Schedule.valueOf(choice("huber_schedule", "snr", "exponential",
                "constant").toUpperCase(Locale.ROOT));
        double c = dblOrNull("huber_c");
        if (!(c > 0 && c <= 1)) {
            throw bad("huber_c", "must lie in (0, 1], got " + c);
        }
        return new LossFunction(type, schedule, c);
    }

    /**
     * {@code --cache_text_encoder_outputs} ({@code _to_disk} implies it; the outputs are kept in memory): as the
     * reference, only with {@code --network_train_unet_only} and captions that are the same at every draw.
     */
    private boolean cacheTextEncoderOutputs(CaptionOptions captions, List<DreamBoothDataset.SubsetSpec> subsets) {
        boolean toDisk = bool("cache_text_encoder_outputs_to_disk");
        if (!bool("cache_text_encoder_outputs") && !toDisk) {
            return false;
        }
        String flag = toDisk ? "cache_text_encoder_outputs_to_disk" : "cache_text_encoder_outputs";
        if (toDisk) {
            reporter.log(Reporter.Level.INFO, "INFO: --cache_text_encoder_outputs_to_disk: the outputs are cached in"
                    + " memory (encoding them again is faster than reading files)");
        }
        if (!bool("network_train_unet_only")) {
            throw bad(flag, "the text encoders' outputs can be cached only when they are not trained"
                    + " (--network_train_unet_only)");
        }
        List<CaptionOptions> all = new ArrayList<>();
        all.add(captions);
        for (DreamBoothDataset.SubsetSpec s : subsets) {
            all.add(s.captions());
        }
        for (CaptionOptions o : all) {
            if (o != null && !o.sameEveryDraw()) {
                throw bad(flag, "captions that change between draws (shuffle_caption, enable_wildcard,"
                        + " caption_dropout_rate, caption_dropout_every_n_epochs, caption_tag_dropout_rate,"
                        + " token_warmup_step) cannot be cached");
            }
        }
        return true;
    }

    /** {@code --max_token_length}: kohya's choices 150 and 225; absent: 75 (one 77-id window). */
    private int maxTokenLength() {
        Long v = longOrNull("max_token_length");
        if (v == null) {
            return 75;
        }
        if (v != 150 && v != 225) {
            throw bad("max_token_length", v + " is not one of 150, 225 (absent: 75 tokens)");
        }
        return v.intValue();
    }

    /**
     * The caption flags; the dropout rates are chances, in [0, 1]; the token warm-up's minimum a tag count and its
     * step zero or positive (below 1, a fraction of the run).
     */
    private CaptionOptions captionOptions() {
        double warmupStep = nonNegative("token_warmup_step", dblOrNull("token_warmup_step"));
        return new CaptionOptions(str("caption_prefix"), str("caption_suffix"), bool("shuffle_caption"),
                intIn("keep_tokens", 0, 1000), nonEmpty("caption_separator"), str("keep_tokens_separator"),
                str("secondary_separator"), chance("caption_dropout_rate"), intIn("caption_dropout_every_n_epochs", 0,
                1_000_000), chance("caption_tag_dropout_rate"), bool("enable_wildcard"),
                intIn("token_warmup_min", 0, 1_000_000), warmupStep);
    }

    private double chance(String name) {
        double v = dblOrNull(name);
        if (!(v >= 0 && v <= 1)) {
            throw bad(name, "must be a chance between 0 and 1, got " + v);
        }
        return v;
    }

    /**
     * The noise flags. As the reference: the offset's random strength and the adaptive scale act only with
     * {@code --noise_offset}, and an adaptive scale without an offset is an error (kohya's check).
     */
    private NoiseOptions noiseOptions() {
        double offset = dblOrNull("noise_offset") == null ? 0 : nonNegative("noise_offset", dblOrNull("noise_offset"));
        Double adaptive = dblOrNull("adaptive_noise_scale");
        if (adaptive != null && offset == 0) {
            throw bad("adaptive_noise_scale", "needs --noise_offset (it scales the offset per channel)");
        }
        if (adaptive != null && !Double.isFinite(adaptive)) {
            throw bad("adaptive_noise_scale", "must be a finite number, got " + adaptive);
        }
        int multires = longOrNull("multires_noise_iterations") == null ? 0 : intIn("multires_noise_iterations", 0, 100);
        double ipGamma = dblOrNull("ip_noise_gamma") == null ? 0 : nonNegative("ip_noise_gamma", dblOrNull("ip_noise_gamma"));
        return new NoiseOptions(offset, bool("noise_offset_random_strength"), adaptive, multires,
                nonNegative("multires_noise_discount", dblOrNull("multires_noise_discount")), ipGamma,
                bool("ip_noise_gamma_random_strength"), bool("zero_terminal_snr"));
    }

    private double nonNegative(String name, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw bad(name, "must be zero or positive, got " + v);
        }
        return v;
    }

    private String choice(String name, String... allowed) {
        String v = str(name);
        for (String a : allowed) {
            if (a.equals(v)) {
                return v;
            }
        }
        throw bad(name, "'" + v + "' is not one of " + String.join(", ", allowed));
    }

    /** kohya's {@code --resolution}: "W,H" or "N" (square). */
    private int[] resolution() {
        String r = str("resolution").strip();
        String[] parts = r.split(",");
        try {
            int w = Integer.parseInt(parts[0].strip());
            int h = parts.length > 1 ? Integer.parseInt(parts[1].strip()) : w;
            if (parts.length > 2 || w < 64 || h < 64 || w > 16384 || h > 16384) {
                throw new NumberFormatException();
            }
            if (w % 8 != 0 || h % 8 != 0) {
                throw bad("resolution", r + ": both sides must be multiples of 8");
            }
            return new int[] {w, h};
        } catch (NumberFormatException e) {
            throw bad("resolution", "'" + r + "' is not 'W,H' or 'N' with sides from 64 to 16384");
        }
    }

    /** {@code key=value} items parsed as Python literals (kohya's {@code ast.literal_eval}). */
    private Map<String, Object> keyValues(String name) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : keyStrings(name).entrySet()) {
            out.put(e.getKey(), PyLiteral.parse(e.getValue(), where(name) + " " + e.getKey()));
        }
        return out;
    }

    /** {@code key=value} items as strings, in order; a repeated key is an error. */
    private Map<String, String> keyStrings(String name) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String item : list(name)) {
            int eq = item.indexOf('=');
            if (eq <= 0) {
                throw bad(name, "'" + item + "' is not key=value");
            }
            String k = item.substring(0, eq).strip();
            if (out.put(k, item.substring(eq + 1).strip()) != null) {
                throw bad(name, k + " is given twice");
            }
        }
        return out;
    }

    private TrainConfig.Schedule schedule(double lr) {
        String name = str("lr_scheduler");
        LrSchedule.Kind kind = LrSchedule.Kind.parse(name);
        if (kind == null) {
            throw bad("lr_scheduler", "'" + name + "' is not supported; tenmin has constant, constant_with_warmup,"
                    + " linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt, cosine_with_min_lr,"
                    + " warmup_stable_decay and piecewise_constant");
        }
        double warmup = nonNegative("lr_warmup_steps", dblOrNull("lr_warmup_steps"));
        if (warmup >= 1 && warmup != Math.rint(warmup)) {
            throw bad("lr_warmup_steps", warmup + " must be a whole number of steps or a fraction below 1");
        }
        if (kind == LrSchedule.Kind.PIECEWISE_CONSTANT) {
            return piecewiseSchedule(warmup);
        }
        if (kind == LrSchedule.Kind.CONSTANT && warmup > 0) {
            throw new InputException("--lr_scheduler=constant does not warm up; use constant_with_warmup with"
                    + " --lr_warmup_steps (the reference stops with the same error)");
        }
        Map<String, Object> args = keyValues("lr_scheduler_args");
        Set<String> allowed = new LinkedHashSet<>();
        // the reference passes num_cycles / 2 to cosine_with_min_lr and warmup_stable_decay (a half cosine at 1)
        double cycles = kind == LrSchedule.Kind.COSINE_WITH_RESTARTS ? longOrNull("lr_scheduler_num_cycles")
                : kind == LrSchedule.Kind.COSINE_WITH_MIN_LR || kind == LrSchedule.Kind.WARMUP_STABLE_DECAY
                ? longOrNull("lr_scheduler_num_cycles") / 2.0 : 0.5;
        double power = dblOrNull("lr_scheduler_power");
        double lrEnd = 1e-7;
        switch (kind) {
            case COSINE, COSINE_WITH_RESTARTS -> allowed.add("num_cycles");
            case POLYNOMIAL -> {
                allowed.add("power");
                allowed.add("lr_end");
            }
            default -> {
            }
        }
        for (Map.Entry<String, Object> e : args.entrySet()) {
            if (!allowed.contains(e.getKey())) {
                throw bad("lr_scheduler_args", e.getKey() + " is not an argument of the " + name + " schedule"
                        + (allowed.isEmpty() ? "" : " (it takes " + String.join(", ", allowed) + ")"));
            }
            if (!(e.getValue() instanceof Number n) || e.getValue() instanceof Boolean) {
                throw bad("lr_scheduler_args", e.getKey() + " must be a number, got " + e.getValue());
            }
            switch (e.getKey()) {
                case "num_cycles" -> {
                    if (kind == LrSchedule.Kind.COSINE_WITH_RESTARTS && isGiven("lr_scheduler_num_cycles")
                            && n.doubleValue() != cycles) {
                        throw new InputException("--lr_scheduler_args num_cycles=" + e.getValue()
                                + " contradicts --lr_scheduler_num_cycles=" + (long) cycles);
                    }
                    cycles = n.doubleValue();
                }
                case "power" -> {
                    if (isGiven("lr_scheduler_power") && n.doubleValue() != power) {
                        throw new InputException("--lr_scheduler_args power=" + e.getValue()
                                + " contradicts --lr_scheduler_power=" + power);
                    }
                    power = n.doubleValue();
                }
                default -> lrEnd = n.doubleValue();
            }
        }
        if (kind == LrSchedule.Kind.POLYNOMIAL && !(lr > lrEnd)) {
            throw new InputException("--lr_scheduler=polynomial: lr_end " + lrEnd + " must be below --learning_rate " + lr);
        }
        double decay = nonNegative("lr_decay_steps", dblOrNull("lr_decay_steps"));
        if (decay >= 1 && decay != Math.rint(decay)) {
            throw bad("lr_decay_steps", decay + " must be a whole number of steps or a fraction below 1");
        }
        Double minRatio = dblOrNull("lr_scheduler_min_lr_ratio");
        if (kind == LrSchedule.Kind.COSINE_WITH_MIN_LR && minRatio == null) {
            throw new InputException("--lr_scheduler=cosine_with_min_lr needs --lr_scheduler_min_lr_ratio (the"
                    + " reference's scheduler stops without it)");
        }
        if (minRatio != null && !(minRatio >= 0 && minRatio <= 1)) {
            throw bad("lr_scheduler_min_lr_ratio", "must lie in [0, 1], got " + minRatio);
        }
        long timescale = longOrNull("lr_scheduler_timescale") == null ? 0 : intIn("lr_scheduler_timescale", 1, 100_000_000);
        return new TrainConfig.Schedule(kind, warmup, cycles, power, lrEnd, args, decay, minRatio == null ? 0 : minRatio,
                timescale, null);
    }

    /**
     * {@code --lr_scheduler=piecewise_constant}: the reference hands {@code --lr_scheduler_args} straight to
     * diffusers' {@code get_piecewise_constant_schedule}, which takes {@code step_rules} (required) and
     * {@code last_epoch} (accepted at its default, -1), and nothing else: no warm-up, which it ignores with a warning
     * here. The reference reads the value with {@code ast.literal_eval}, so there it must be a quoted Python string
     * ({@code step_rules='1:10,0.1:20,0.005'}); tenmin takes that and the unquoted text alike.
     */
    private TrainConfig.Schedule piecewiseSchedule(double warmup) {
        String rules = null;
        Map<String, Object> args = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : keyStrings("lr_scheduler_args").entrySet()) {
            String text = e.getValue();
            // a value that opens with a quote is a Python string literal (a quoted one is never anything else)
            String value = text.startsWith("'") || text.startsWith("\"")
                    ? (String) PyLiteral.parse(text, where("lr_scheduler_args") + " " + e.getKey()) : text;
            switch (e.getKey()) {
                case "step_rules" -> rules = value;
                case "last_epoch" -> {
                    if (!text.strip().equals("-1")) {
                        throw bad("lr_scheduler_args", "last_epoch=" + text + " is not supported (only its default,"
                                + " -1: --resume continues a schedule)");
                    }
                }
                default -> throw bad("lr_scheduler_args", e.getKey() + " is not an argument of the piecewise_constant"
                        + " schedule (it takes step_rules)");
            }
            args.put(e.getKey(), value);
        }
        if (rules == null) {
            throw bad("lr_scheduler_args", "--lr_scheduler=piecewise_constant needs step_rules=MULTIPLIER:STEP,...,"
                    + "MULTIPLIER, e.g. step_rules=1:10,0.1:20,0.005");
        }
        StepRules parsed;
        try {
            parsed = StepRules.parse(rules);
        } catch (IllegalArgumentException e) {
            throw bad("lr_scheduler_args", "step_rules=" + rules + ": " + e.getMessage());
        }
        if (warmup > 0) {
            reporter.log(Reporter.Level.WARNING, "WARNING: " + where("lr_warmup_steps") + " is ignored by"
                    + " --lr_scheduler=piecewise_constant (the reference passes it no warm-up); its step_rules alone"
                    + " set the lr");
        }
        return new TrainConfig.Schedule(LrSchedule.Kind.PIECEWISE_CONSTANT, warmup, 0, 1, 0, args, 0, 0, 0, parsed);
    }

    /**
     * {@code --dim_from_weights}: the ranks and alphas of the {@code --network_weights} file, {dim, alpha, conv_dim,
     * conv_alpha} (conv 0 when it adapts no k×k convolution). The reference builds one module per file module with
     * its own rank; tenmin trains one rank for linear and 1×1 modules and one for k×k convolutions, so a file whose
     * modules differ within a kind (a resized LoRA) is refused naming two of them.
     */
    private double[] ranksFromWeights() {
        Path file = pathOrNull("network_weights");
        if (file == null) {
            throw bad("dim_from_weights", "needs --network_weights (the file to read the ranks from)");
        }
        String[] seen = new String[2];
        double[][] ranks = new double[2][];
        try (tenmin.formats.SafetensorsFile st = tenmin.formats.SafetensorsFile.open(file)) {
            for (String k : st.names()) {
                if (!k.endsWith(".lora_down.weight")) {
                    continue;
                }
                long[] shape = st.info(k).shape();
                int kind = shape.length == 4 && (shape[2] > 1 || shape[3] > 1) ? 1 : 0;
                String alphaKey = k.substring(0, k.length() - ".lora_down.weight".length()) + ".alpha";
                double rank = shape[0];
                double a = st.contains(alphaKey) ? st.readScalar(alphaKey) : rank;
                if (ranks[kind] == null) {
                    ranks[kind] = new double[] {rank, a};
                    seen[kind] = k;
                } else if (ranks[kind][0] != rank || Math.abs(ranks[kind][1] - a) > 1e-3 * Math.abs(a)) {
                    throw new InputException(file + ": " + seen[kind] + " has rank " + (long) ranks[kind][0] + " alpha "
                            + ranks[kind][1] + ", " + k + " rank " + (long) rank + " alpha " + a + "; --dim_from_weights"
                            + " needs one rank and alpha for " + (kind == 1 ? "k×k convolutions" : "linear modules"));
                }
            }
        }
        if (ranks[0] == null) {
            throw new InputException(file + ": no LoRA modules (*.lora_down.weight) to read ranks from");
        }
        return new double[] {ranks[0][0], ranks[0][1], ranks[1] == null ? 0 : ranks[1][0],
                ranks[1] == null ? ranks[0][1] : ranks[1][1]};
    }

    /** LyCORIS' {@code str_bool}: anything but "false" (any case) is true. */
    private static boolean strBool(String v) {
        return !v.toLowerCase(Locale.ROOT).equals("false");
    }

    private TrainConfig.Network network() {
        String module = str("network_module");
        if (module == null) {
            module = "lycoris.kohya";
        } else if (!module.equals("lycoris.kohya")) {
            throw bad("network_module", "'" + module + "' is not supported; tenmin trains LyCORIS LoCon (lycoris.kohya)");
        }
        int dim = longOrNull("network_dim") == null ? 4 : intIn("network_dim", 1, 4096);
        double alpha = dblOrNull("network_alpha");
        if (!(alpha > 0)) {
            throw bad("network_alpha", "must be positive, got " + alpha);
        }
        Map<String, String> args = keyStrings("network_args");
        String algo = "locon";
        String preset = "full";
        Map<String, Double> dropouts = new java.util.HashMap<>();
        // LyCORIS create_network: conv_dim and conv_alpha default to network_dim and network_alpha, so k x k
        // convolutions are adapted unless conv_dim=0 is given
        int convDim = dim;
        double convAlpha = alpha;
        Set<String> presets = Set.of("full", "full-lin", "attn-mlp", "attn-only", "unet-transformer-only",
                "unet-convblock-only");
        for (Map.Entry<String, String> e : args.entrySet()) {
            String k = e.getKey();
            String v = e.getValue();
            String src = where("network_args") + " " + k;
            try {
                switch (k) {
                    case "algo" -> {
                        if (!v.equals("locon") && !v.equals("lora")) {
                            throw new InputException(src + ": algo '" + v + "' is not supported; tenmin trains locon");
                        }
                        algo = "locon";
                    }
                    case "preset" -> {
                        if (!presets.contains(v)) {
                            throw new InputException(src + ": unknown preset '" + v + "' (LyCORIS presets: "
                                    + String.join(", ", new java.util.TreeSet<>(presets)) + ")");
                        }
                        preset = v;
                    }
                    case "conv_dim" -> convDim = Integer.parseInt(v);
                    case "conv_alpha" -> convAlpha = Double.parseDouble(v);
                    case "dropout", "rank_dropout", "module_dropout" -> {
                        // LyCORIS: float(kwargs.get(k, 0.0) or 0.0)
                        double p = v.isEmpty() || v.equals("None") ? 0 : Double.parseDouble(v);
                        if (!(p >= 0 && p <= 1)) {
                            throw new InputException(src + "=" + v + ": a dropout probability lies in [0, 1]");
                        }
                        dropouts.put(k, p);
                    }
                    case "use_tucker", "use_scalar", "dora_wd", "train_norm", "rs_lora", "weight_decompose" -> {
                        if (strBool(v)) {
                            throw new InputException(src + "=" + v + ": not supported by tenmin (LyCORIS reads any value"
                                    + " other than False as true)");
                        }
                    }
                    case "rank_dropout_scale", "bypass_mode" -> reporter.log(Reporter.Level.WARNING,
                            "WARNING: --network_args " + k + " has no effect in tenmin"
                                    + (k.equals("bypass_mode") ? " (the LoCon branch is always computed beside the"
                                    + " frozen layer)" : " (the reference does not read it either)"));
                    default -> throw new InputException(src + ": unknown LyCORIS argument");
                }
            } catch (NumberFormatException ex) {
                throw new InputException(src + ": '" + v + "' is not a number");
            }
        }
        if (convDim < 0 || !(convAlpha > 0)) {
            throw bad("network_args", "conv_dim must be ≥ 0 and conv_alpha positive");
        }
        boolean unetOnly = bool("network_train_unet_only");
        boolean teOnly = bool("network_train_text_encoder_only");
        if (unetOnly && teOnly) {
            throw new InputException("--network_train_unet_only and --network_train_text_encoder_only exclude each other");
        }
        String pooled = choice("te2_pooled", "sai", "kohya");
        String teModules = choice("text_encoder_modules", "full", "mlp");
        if (!preset.equals("full")) {
            throw bad("network_args", "preset '" + preset + "' is not implemented; tenmin trains preset=full");
        }
        // kohya hands --network_dropout to LyCORIS as its "dropout" unless --network_args names one
        Double networkDropout = dblOrNull("network_dropout");
        if (!dropouts.containsKey("dropout") && networkDropout != null) {
            if (!(networkDropout >= 0 && networkDropout <= 1)) {
                throw bad("network_dropout", "a dropout probability lies in [0, 1], got " + networkDropout);
            }
            dropouts.put("dropout", networkDropout);
        }
        LoConDropout dropout = new LoConDropout(dropouts.getOrDefault("dropout", 0.0),
                dropouts.getOrDefault("rank_dropout", 0.0), dropouts.getOrDefault("module_dropout", 0.0));
        if (bool("dim_from_weights") && dropout.any()) {
            // LyCORIS's create_network_from_weights builds its network with no dropout, whatever was asked
            reporter.log(Reporter.Level.WARNING, "WARNING: --dim_from_weights: the network has no dropout, as in the"
                    + " reference (LyCORIS builds a network from weights without its dropout arguments)");
            dropout = LoConDropout.NONE;
        }
        if (bool("dim_from_weights")) {
            double[] ranks = ranksFromWeights();
            dim = (int) ranks[0];
            alpha = ranks[1];
            convDim = (int) ranks[2];
            convAlpha = ranks[3];
            reporter.log(Reporter.Level.INFO, "INFO: --dim_from_weights: network_dim " + dim + ", network_alpha " + alpha
                    + ", conv_dim " + convDim + (convDim > 0 ? ", conv_alpha " + convAlpha : "") + " from "
                    + str("network_weights"));
        }
        return new TrainConfig.Network(module, dim, alpha, convDim, convAlpha, algo, preset, args, !teOnly, !unetOnly,
                pooled.equals("kohya"), teModules.equals("mlp") ? LoConPreset.TextEncoderModules.MLP_ONLY
                        : LoConPreset.TextEncoderModules.FULL, dropout);
    }
}
