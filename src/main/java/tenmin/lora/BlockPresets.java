package tenmin.lora;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The SDXL presets of ComfyUI-Inspire-Pack's {@code resources/lbw-preset.txt} (postprocess-spec §4.4):
 * {@code SDXL-*} have 12 entries (attention-only LoRA: BASE + 11 blocks), {@code SDXL-LyC-*} have 21
 * (full LoCon: BASE + the 20 blocks of chop's layout).
 */
public final class BlockPresets {
    private static final Map<String, String> PRESETS = build();

    private BlockPresets() {
    }

    private static Map<String, String> build() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("SDXL-NONE", "0,0,0,0,0,0,0,0,0,0,0,0");
        m.put("SDXL-ALL", "1,1,1,1,1,1,1,1,1,1,1,1");
        m.put("SDXL-INALL", "1,1,1,1,1,0,0,0,0,0,0,0");
        m.put("SDXL-MIDALL", "1,0,0,0,0,1,0,0,0,0,0,0");
        m.put("SDXL-OUTALL", "1,0,0,0,0,0,1,1,1,1,1,1");
        m.put("SDXL-LyC-NONE", repeat("0", 21));
        m.put("SDXL-LyC-ALL", repeat("1", 21));
        m.put("SDXL-LyC-INALL", "1," + repeat("1", 8) + "," + repeat("0", 12));
        m.put("SDXL-LyC-MIDALL", "1," + repeat("0", 8) + "," + repeat("1", 3) + "," + repeat("0", 9));
        m.put("SDXL-LyC-OUTALL", "1," + repeat("0", 11) + "," + repeat("1", 9));
        return Map.copyOf(m);
    }

    private static String repeat(String v, int n) {
        return String.join(",", java.util.Collections.nCopies(n, v));
    }

    /** The vector of preset {@code name}, or null. */
    public static String get(String name) {
        return PRESETS.get(name);
    }

    /** Preset names, sorted. */
    public static java.util.List<String> names() {
        return PRESETS.keySet().stream().sorted().toList();
    }
}
