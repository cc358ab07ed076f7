package tenmin.tools.resize;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import tenmin.core.PyJson;
import tenmin.core.PyText;
import tenmin.core.Reporter;
import tenmin.formats.AtomicFile;

/**
 * The base-checkpoint norms cache: a JSON file in the reference's layout (postprocess-spec §2.5),
 * <pre>
 * {"/abs/path/ckpt.safetensors": {"frobenius_norms": {"lora_unet_...": 35.42, ...},
 *                                 "spectral_norms": {...}, "file_size": 6938078334, "file_mtime": 1732...}}
 * </pre>
 * keyed by the checkpoint's real absolute path, then by LoRA module name, written like Python's
 * {@code json.dump}. The module names follow the reference's pairing (text encoder 2's in_proj chunk 0
 * under k_proj, chunk 1 under q_proj), so a cache file is interchangeable with the reference's in both
 * directions; {@link #nameFor} does the translation. {@code file_size} and {@code file_mtime} (added by
 * tenmin, ignored by the reference) detect a checkpoint replaced under the same path: a mismatching
 * entry is recomputed.
 *
 * <p>A missing file is an empty cache; a file that cannot be read or parsed gives a warning and is left
 * untouched. Saving merges into the file's current content and writes atomically; a failure to save is a
 * warning, never an error (the cache only saves time).
 */
final class NormsCache {
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    private final Path file;          // null: disabled
    private final String key;         // checkpoint real path
    private final long fileSize;
    private final long fileMtime;
    private final Map<String, Double> frobenius = new LinkedHashMap<>();
    private final Map<String, Double> spectral = new LinkedHashMap<>();
    private boolean writable = true;
    private boolean dirty;

    private NormsCache(Path file, String key, long fileSize, long fileMtime) {
        this.file = file;
        this.key = key;
        this.fileSize = fileSize;
        this.fileMtime = fileMtime;
    }

    /** A cache that neither reads nor writes anything. */
    static NormsCache disabled() {
        return new NormsCache(null, "", 0, 0);
    }

    /** Loads the entry of {@code checkpoint} from {@code file} (logging {@code INFO:root:Loading <file>}). */
    @SuppressWarnings("unchecked")
    static NormsCache load(Path file, Path checkpoint, Reporter reporter) {
        String key;
        long size;
        long mtime;
        try {
            key = checkpoint.toRealPath().toString();
            size = Files.size(checkpoint);
            mtime = Files.getLastModifiedTime(checkpoint).toMillis();
        } catch (IOException e) {
            key = checkpoint.toAbsolutePath().normalize().toString();
            size = -1;
            mtime = -1;
        }
        NormsCache cache = new NormsCache(file, key, size, mtime);
        if (!Files.exists(file)) {
            return cache;
        }
        reporter.log(Reporter.Level.INFO, "INFO:root:Loading " + PyText.path(file));
        Map<String, Object> root = cache.readFile(reporter);
        if (root == null) {
            return cache;
        }
        Object entry = root.get(key);
        if (entry instanceof Map<?, ?> m) {
            Map<String, Object> e = (Map<String, Object>) m;
            if (stale(e, size, mtime)) {
                reporter.log(Reporter.Level.INFO, "INFO:root:Norms cache entry for " + key
                        + " is for another version of that file; recomputing");
                return cache;
            }
            copyNumbers(e.get("frobenius_norms"), cache.frobenius);
            copyNumbers(e.get("spectral_norms"), cache.spectral);
        }
        return cache;
    }

    private static boolean stale(Map<String, Object> entry, long size, long mtime) {
        Object s = entry.get("file_size");
        Object t = entry.get("file_mtime");
        return (s instanceof Number n && n.longValue() != size) || (t instanceof Number n2 && n2.longValue() != mtime);
    }

    private static void copyNumbers(Object from, Map<String, Double> to) {
        if (from instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (e.getValue() instanceof Number n) {
                    to.put(String.valueOf(e.getKey()), n.doubleValue());
                }
            }
        }
    }

    /** The file's JSON object, or null (and no later writes) when it cannot be read or is not an object. */
    @SuppressWarnings("unchecked")
    private Map<String, Object> readFile(Reporter reporter) {
        try {
            Object v = JSON.readValue(file.toFile(), Object.class);
            if (v instanceof Map<?, ?> m) {
                return (Map<String, Object>) m;
            }
            reporter.log(Reporter.Level.WARNING, "WARNING:root:Norms cache " + file
                    + " is not a JSON object; ignoring it and leaving it unchanged");
        } catch (IOException e) {
            reporter.log(Reporter.Level.WARNING, "WARNING:root:Cannot read norms cache " + file + " ("
                    + firstLine(e.getMessage()) + "); ignoring it and leaving it unchanged");
        }
        writable = false;
        return null;
    }

    /** The cached Frobenius norm under the reference's module name, or null. */
    synchronized Double frobenius(String referenceName) {
        return frobenius.get(referenceName);
    }

    synchronized Double spectral(String referenceName) {
        return spectral.get(referenceName);
    }

    synchronized void putFrobenius(String referenceName, double value) {
        frobenius.put(referenceName, value);
        dirty = true;
    }

    synchronized void putSpectral(String referenceName, double value) {
        spectral.put(referenceName, value);
        dirty = true;
    }

    /** Writes the updated entry back, merged into the file's current content. */
    synchronized void save(Reporter reporter) {
        if (file == null || !dirty || !writable) {
            return;
        }
        Map<String, Object> root = new LinkedHashMap<>();
        if (Files.exists(file)) {
            Map<String, Object> current = readFile(reporter);
            if (current == null) {
                return;
            }
            root.putAll(current);
        }
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("frobenius_norms", new java.util.TreeMap<String, Object>(frobenius)); // sorted: deterministic
        entry.put("spectral_norms", new java.util.TreeMap<String, Object>(spectral));
        if (fileSize >= 0) {
            entry.put("file_size", fileSize);
            entry.put("file_mtime", fileMtime);
        }
        root.put(key, entry);
        try {
            Path dir = file.toAbsolutePath().getParent();
            if (dir != null) {
                Files.createDirectories(dir);
            }
            AtomicFile.write(file, PyJson.dumps(root).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            dirty = false;
        } catch (IOException | RuntimeException e) {
            reporter.log(Reporter.Level.WARNING, "WARNING:root:Cannot write norms cache " + file + " ("
                    + firstLine(e.getMessage()) + ")");
        }
    }

    /**
     * The cache name of a base weight: the LoRA module the reference pairs with it. For text encoder 2's
     * in_proj row chunks that is k_proj for chunk 0 and q_proj for chunk 1 (the reference's order).
     */
    static String nameFor(Pairing.Base base, Map<tenmin.lora.SdxlKeyMap.Target, String> correctNames) {
        return correctNames.get(Pairing.referenceSwap(base.target()));
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    /** The default cache file: {@code $XDG_CACHE_HOME/tenmin/norms_cache.json}, else under the user's home. */
    static Path defaultFile() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "tenmin", "norms_cache.json");
        }
        String local = System.getenv("LOCALAPPDATA"); // Windows
        if (local != null && !local.isBlank()) {
            return Path.of(local, "tenmin", "norms_cache.json");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "tenmin", "norms_cache.json");
    }
}
