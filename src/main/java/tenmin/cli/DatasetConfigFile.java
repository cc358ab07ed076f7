package tenmin.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.formats.Toml;

/**
 * kohya's {@code --dataset_config} TOML ({@code library/config_util.py}), DreamBooth form: {@code [general]} options,
 * then {@code [[datasets]]} with dataset options and {@code [[datasets.subsets]]}, each an {@code image_dir} (images
 * directly in it) with {@code num_repeats}, {@code class_tokens}, {@code is_reg} and subset options. An option is
 * looked up in the subset, then its dataset, then {@code [general]}, then the command line (the reference's
 * {@code generate_params_by_fallbacks}). Unknown keys are errors (the reference's schema rejects them).
 *
 * <p>Any number of {@code [[datasets]]} entries, each with its own resolution, batch size and bucket options; in
 * messages, the entries of a file with several are numbered from 1 ("[[datasets]] 2").
 */
final class DatasetConfigFile {
    /** Dataset options: the dataset-level flags of {@code tenmin train} (batch_size is --train_batch_size). */
    static final Set<String> DATASET_KEYS = Set.of("resolution", "batch_size", "enable_bucket", "min_bucket_reso",
            "max_bucket_reso", "bucket_reso_steps", "bucket_no_upscale", "network_multiplier");
    /**
     * Subset options, also allowed in a dataset and in [general] (the reference's "ascendable" subset schema of a
     * DreamBooth dataset); those that are flags of {@code tenmin train} have the flags' names.
     */
    static final Set<String> SUBSET_KEYS = Set.of("color_aug", "face_crop_aug_range", "flip_aug", "num_repeats",
            "random_crop", "shuffle_caption", "keep_tokens", "keep_tokens_separator", "secondary_separator",
            "caption_separator", "enable_wildcard", "token_warmup_min", "token_warmup_step", "caption_prefix",
            "caption_suffix", "caption_dropout_rate", "caption_dropout_every_n_epochs", "caption_tag_dropout_rate",
            "caption_extension", "class_tokens", "cache_info");
    /** Keys of a DreamBooth subset only. */
    static final Set<String> DREAMBOOTH_KEYS = Set.of("image_dir", "is_reg", "alpha_mask", "conditioning_data_dir");

    /** An option's value and where it was read ("FILE: [[datasets.subsets]] 2: key"). */
    record Option(Object value, String source) {
    }

    /**
     * One {@code [[datasets]]} entry read: its dataset options (dataset, then [general]) and per subset its options
     * (subset, dataset, [general]) with its DreamBooth keys.
     *
     * @param label how messages name the entry ("[[datasets]]", or "[[datasets]] 2" in a file with several)
     */
    record Dataset(String label, Map<String, Option> options, List<Map<String, Option>> subsets) {
    }

    /** The file read: its datasets in file order (at least one). */
    record Parsed(Path file, List<Dataset> datasets) {
        /** The first dataset's options: those that become the run's flags. */
        Map<String, Option> dataset() {
            return datasets.get(0).options();
        }
    }

    private DatasetConfigFile() {
    }

    static Parsed read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new InputException("--dataset_config: " + file + " does not exist");
        }
        Map<String, Object> doc = Toml.parse(file);
        for (String k : doc.keySet()) {
            if (!k.equals("general") && !k.equals("datasets")) {
                throw new InputException(file + ": unknown key " + k + " (a dataset config has [general] and"
                        + " [[datasets]])");
            }
        }
        Map<String, Object> general = table(doc.get("general"), file + ": [general]");
        checkKeys(general, file + ": [general]", DATASET_KEYS, SUBSET_KEYS);
        if (!(doc.get("datasets") instanceof List<?> datasets) || datasets.isEmpty()) {
            throw new InputException(file + ": no [[datasets]] entry");
        }
        List<Dataset> out = new ArrayList<>();
        for (int d = 0; d < datasets.size(); d++) {
            String label = datasets.size() == 1 ? "[[datasets]]" : "[[datasets]] " + (d + 1);
            out.add(dataset(file, label, datasets.get(d), general));
        }
        return new Parsed(file, out);
    }

    /** One {@code [[datasets]]} entry, its options falling back to {@code general}. */
    private static Dataset dataset(Path file, String label, Object entry, Map<String, Object> general) {
        Map<String, Object> dataset = table(entry, file + ": " + label);
        checkKeys(dataset, file + ": " + label, DATASET_KEYS, SUBSET_KEYS, Set.of("subsets"));
        if (!(dataset.get("subsets") instanceof List<?> subsetList) || subsetList.isEmpty()) {
            throw new InputException(file + ": " + label + " has no [[datasets.subsets]]");
        }
        String datasetWhere = file + ": " + label;
        Map<String, Option> datasetOptions = new LinkedHashMap<>();
        for (String k : DATASET_KEYS) {
            Option o = lookup(k, file, datasetWhere, null, null, dataset, general);
            if (o != null) {
                datasetOptions.put(k, o);
            }
        }
        List<Map<String, Option>> subsets = new ArrayList<>();
        for (int i = 0; i < subsetList.size(); i++) {
            String where = file + ": " + (label.equals("[[datasets]]") ? "" : label + " ") + "[[datasets.subsets]] "
                    + (i + 1);
            Map<String, Object> subset = table(subsetList.get(i), where);
            if (subset.containsKey("metadata_file")) {
                throw new InputException(where + ": metadata_file (fine-tuning datasets) is not supported; tenmin"
                        + " trains DreamBooth-style subsets (image_dir)");
            }
            checkKeys(subset, where, SUBSET_KEYS, DREAMBOOTH_KEYS);
            if (!(subset.get("image_dir") instanceof String)) {
                throw new InputException(where + ": image_dir (a folder of images) is required");
            }
            Map<String, Option> options = new LinkedHashMap<>();
            for (String k : SUBSET_KEYS) {
                Option o = lookup(k, file, datasetWhere, where, subset, dataset, general);
                if (o != null) {
                    options.put(k, o);
                }
            }
            for (String k : DREAMBOOTH_KEYS) {
                if (subset.containsKey(k)) {
                    options.put(k, new Option(subset.get(k), where + ": " + k));
                }
            }
            subsets.add(options);
        }
        return new Dataset(label, datasetOptions, subsets);
    }

    /** {@code key} from the subset, the dataset or [general], the first that has it; null when none does. */
    private static Option lookup(String key, Path file, String datasetWhere, String subsetWhere,
                                 Map<String, Object> subset, Map<String, Object> dataset, Map<String, Object> general) {
        if (subset != null && subset.containsKey(key)) {
            return new Option(subset.get(key), subsetWhere + ": " + key);
        }
        if (dataset.containsKey(key)) {
            return new Option(dataset.get(key), datasetWhere + (datasetWhere.endsWith("]") ? " " : ": ") + key);
        }
        if (general.containsKey(key)) {
            return new Option(general.get(key), file + ": [general] " + key);
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> table(Object o, String where) {
        if (o == null) {
            return Map.of();
        }
        if (!(o instanceof Map<?, ?> m)) {
            throw new InputException(where + ": expected a table");
        }
        return (Map<String, Object>) m;
    }

    @SafeVarargs
    private static void checkKeys(Map<String, Object> table, String where, Set<String>... allowed) {
        for (String k : table.keySet()) {
            boolean ok = false;
            for (Set<String> s : allowed) {
                ok |= s.contains(k);
            }
            if (!ok) {
                throw new InputException(where + ": unknown key " + k);
            }
        }
    }
}
