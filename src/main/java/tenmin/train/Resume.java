package tenmin.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

import tenmin.core.InputException;
import tenmin.train.save.OutputNames;
import tenmin.train.save.TrainingState;
import tenmin.train.save.TrainingStateFile;

/**
 * {@code --resume}: finds the training state to continue from and checks that it belongs to this recipe.
 * The recipe is every flag except those that only say where outputs go, how often to save, sample or log,
 * on which device and which blocks it recomputes (those may change between the stopped run and its
 * continuation); the seed comes from the state.
 */
final class Resume {
    /** Flags that may differ between a run and its continuation. */
    static final Set<String> NOT_RECIPE = Set.of("resume", "config_file", "output_dir", "output_name", "seed",
            "logging_dir", "log_prefix", "log_with", "log_tracker_name", "reference_lr_tags", "sample_prompts",
            "sample_sampler", "sample_every_n_steps", "sample_every_n_epochs", "sample_at_first", "save_every_n_steps",
            "save_every_n_epochs", "save_last_n_steps", "save_last_n_epochs", "save_n_epoch_ratio", "save_precision", "save_model_as", "save_state",
            "save_state_on_train_end", "no_metadata", "training_comment", "metadata_title", "metadata_author",
            "metadata_description", "metadata_license", "metadata_tags", "device", "cpu_threads", "strict",
            "max_data_loader_n_workers", "persistent_data_loader_workers", "console_log_level", "console_log_file",
            "console_log_simple", "log_config", "lowram", "lowvram", "highvram", "sdpa", "xformers", "mem_eff_attn",
            "checkpointing", "save_last_n_steps_state", "save_last_n_epochs_state", "use_safetensors",
            "log_tracker_config", "huggingface_repo_id", "huggingface_repo_type", "huggingface_path_in_repo",
            "huggingface_token", "huggingface_repo_visibility", "save_state_to_huggingface", "async_upload", "cache_info",
            "disable_mmap_load_safetensors", "tokenizer_cache_dir");

    /** Info key holding the recipe text. */
    static final String RECIPE_INFO = "recipe";

    private Resume() {
    }

    /**
     * What a training state's digest covers: the flags (a {@code --dataset_config}'s first dataset through the flags
     * its options set) and, with several {@code [[datasets]]}, each later dataset's resolution, buckets, batch size
     * and subsets as {@code dataset_config[N]}.
     */
    static Map<String, Object> recipe(TrainConfig cfg) {
        Map<String, Object> recipe = new LinkedHashMap<>(cfg.flags());
        List<TrainConfig.Dataset> later = cfg.data().laterDatasets();
        for (int i = 0; i < later.size(); i++) {
            recipe.put("dataset_config[" + (i + 2) + "]", later.get(i));
        }
        return recipe;
    }

    /** The recipe as sorted {@code flag=value} lines (what the state's digest covers). */
    static String recipeText(Map<String, Object> flags) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Object> e : new TreeMap<>(flags).entrySet()) {
            if (!NOT_RECIPE.contains(e.getKey())) {
                sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
            }
        }
        return sb.toString();
    }

    /** The digest stored in training states. */
    static String digest(Map<String, Object> flags) {
        Map<String, Object> recipe = new LinkedHashMap<>();
        flags.forEach((k, v) -> {
            if (!NOT_RECIPE.contains(k)) {
                recipe.put(k, v);
            }
        });
        return TrainingStateFile.configDigest(recipe);
    }

    /**
     * The state file {@code given} names: the file itself, the state beside a LoRA file, or the most recently
     * written state in a folder.
     */
    static Path locate(Path given) {
        if (Files.isDirectory(given)) {
            try (Stream<Path> s = Files.list(given)) {
                return s.filter(p -> p.getFileName().toString().endsWith(OutputNames.STATE_SUFFIX))
                        .max((a, b) -> modified(a).compareTo(modified(b)))
                        .orElseThrow(() -> new InputException("--resume " + given + ": no *" + OutputNames.STATE_SUFFIX
                                + " file in this folder (tenmin writes one beside every saved LoRA)"));
            } catch (IOException e) {
                throw new InputException("--resume " + given + ": cannot list: " + e.getMessage(), e);
            }
        }
        if (given.getFileName().toString().endsWith(".safetensors")) {
            Path state = given.resolveSibling(OutputNames.stateFor(given.getFileName().toString()));
            if (!Files.isRegularFile(state)) {
                throw new InputException("--resume " + given + ": no training state beside it (" + state.getFileName() + ")");
            }
            return state;
        }
        return given;
    }

    private static java.nio.file.attribute.FileTime modified(Path p) {
        try {
            return Files.getLastModifiedTime(p);
        } catch (IOException e) {
            return java.nio.file.attribute.FileTime.fromMillis(0);
        }
    }

    /**
     * Reads the state and checks it against the run's flags.
     *
     * @throws InputException when the file is not a state, the recipe differs (naming the flags), or
     *                        {@code --seed} contradicts the state's seed
     */
    static TrainingState read(Path given, TrainConfig cfg) {
        Path file = locate(given);
        TrainingState s = TrainingStateFile.read(file);
        if (!s.configDigest().equals(digest(recipe(cfg)))) {
            List<String> diffs = differences(s.info().getOrDefault(RECIPE_INFO, ""), recipeText(recipe(cfg)));
            throw new InputException("--resume " + file + ": the run was made with other settings ("
                    + (diffs.isEmpty() ? "recipe digest differs" : String.join("; ", diffs))
                    + "); resume with the same recipe");
        }
        if (cfg.loop().seedGiven() && cfg.loop().seed() != s.seed()) {
            throw new InputException("--resume " + file + ": --seed " + cfg.loop().seed() + " differs from the run's seed "
                    + s.seed() + " (leave --seed out to continue)");
        }
        return s;
    }

    private static List<String> differences(String saved, String now) {
        Map<String, String> a = lines(saved);
        Map<String, String> b = lines(now);
        List<String> out = new ArrayList<>();
        Set<String> keys = new java.util.TreeSet<>(a.keySet());
        keys.addAll(b.keySet());
        for (String k : keys) {
            String x = a.getOrDefault(k, "(absent)");
            String y = b.getOrDefault(k, "(absent)");
            if (!x.equals(y)) {
                out.add("--" + k + " was " + x + ", now " + y);
            }
        }
        return out;
    }

    private static Map<String, String> lines(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                m.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return m;
    }
}
