package tenmin.lora;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import tenmin.core.InputException;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;

/**
 * A kohya/LyCORIS LoRA file seen as modules: every tensor key {@code <module>.<suffix>} is grouped by
 * the part before its first dot (module names never contain dots: kohya replaces them with
 * {@code _}). Built from the header alone; tensor data is read on demand through {@link LoraModule}.
 *
 * <p>Typical use:
 * <pre>{@code
 * try (LoraFile lora = LoraFile.open(path)) {
 *     for (LoraModule m : lora.modules()) {
 *         m.requireSupported();                       // InputException for LoHa, Tucker, bad shapes
 *         float[] up = m.readUp(), down = m.readDown(); // [O, R], [R, I*K*K]
 *         double scale = m.scale();                   // alpha / R
 *     }
 * }
 * }</pre>
 */
public final class LoraFile implements AutoCloseable {
    private final SafetensorsFile file;
    private final boolean owned;
    private final Map<String, LoraModule> modules; // sorted by name
    private final List<String> looseKeys;

    private LoraFile(SafetensorsFile file, boolean owned) {
        this.file = file;
        this.owned = owned;
        Map<String, Map<String, TensorInfo>> groups = new TreeMap<>();
        List<String> loose = new ArrayList<>();
        for (String key : file.names()) {
            int dot = key.indexOf('.');
            if (dot <= 0) {
                loose.add(key);
                continue;
            }
            groups.computeIfAbsent(key.substring(0, dot), k -> new LinkedHashMap<>()).put(key.substring(dot), file.info(key));
        }
        Map<String, LoraModule> mods = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, TensorInfo>> e : groups.entrySet()) {
            mods.put(e.getKey(), new LoraModule(file, e.getKey(), e.getValue()));
        }
        this.modules = Collections.unmodifiableMap(mods);
        this.looseKeys = List.copyOf(loose);
    }

    /**
     * Opens and validates {@code path} as a LoRA file: a valid safetensors file with at least one
     * {@code lora_*} tensor. Throws {@link InputException} otherwise.
     */
    public static LoraFile open(Path path) {
        SafetensorsFile f = SafetensorsFile.open(path);
        try {
            LoraFile lora = of(f, true);
            f = null;
            return lora;
        } finally {
            if (f != null) {
                f.close();
            }
        }
    }

    /** A LoRA view over an already open file; closing the view leaves {@code file} open. */
    public static LoraFile of(SafetensorsFile file) {
        return of(file, false);
    }

    private static LoraFile of(SafetensorsFile file, boolean owned) {
        if (!looksLikeLora(file)) {
            throw new InputException(file.path() + ": not a LoRA file: no lora_unet_*/lora_te*_* tensors"
                    + (file.size() == 0 ? " (the file has no tensors)" : " (first key: " + file.names().get(0) + ")"));
        }
        return new LoraFile(file, owned);
    }

    /** Whether any tensor key starts with {@code lora_} (kohya/LyCORIS naming). */
    public static boolean looksLikeLora(SafetensorsFile file) {
        for (String k : file.names()) {
            if (k.startsWith("lora_")) {
                return true;
            }
        }
        return false;
    }

    public SafetensorsFile file() {
        return file;
    }

    public Path path() {
        return file.path();
    }

    /** The {@code __metadata__} map (empty when the file has none). */
    public Map<String, String> metadata() {
        return file.metadata();
    }

    /** All modules, sorted by name. */
    public List<LoraModule> modules() {
        return List.copyOf(modules.values());
    }

    /** The module called {@code name}, or null. */
    public LoraModule module(String name) {
        return modules.get(name);
    }

    /** Keys without a {@code module.} prefix (not part of any module; rare). */
    public List<String> looseKeys() {
        return looseKeys;
    }

    @Override
    public void close() {
        if (owned) {
            file.close();
        }
    }
}
