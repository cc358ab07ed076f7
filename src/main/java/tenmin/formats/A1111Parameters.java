package tenmin.formats;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.core.PyFormat;

/**
 * The generation-settings text A1111 stores in a PNG's {@code parameters} chunk, which A1111/Forge's "PNG
 * Info", ComfyUI's loaders, image viewers and sharing sites read back:
 *
 * <pre>
 * a photo of a cat, (detailed:1.2)
 * Negative prompt: blurry
 * Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "my_lora: 0123456789ab", Version: tenmin 0.1.0
 * </pre>
 *
 * <p>Rules, from A1111's {@code processing.create_infotext} (web UI 1.9-1.10) and
 * {@code infotext_utils.quote}: the prompt; a line {@code Negative prompt: …} only when the negative prompt
 * is not empty; then one line of {@code key: value} pairs joined by {@code ", "} in A1111's order (Steps,
 * Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model, VAE hash, VAE, Denoising strength,
 * Clip skip, RNG, the extra parameters such as {@code Lora hashes}, Version); fields without a value are left
 * out; a value that contains a comma, a colon or a newline is written as a JSON string
 * ({@code json.dumps(v, ensure_ascii=False)}); the whole text is stripped of surrounding whitespace. LoRA
 * hashes are {@code "alias: hash, alias: hash"} with {@code :} and {@code ,} removed from each alias.
 * Numbers print as Python prints them, except that whole CFG scales print without {@code .0}, as the web
 * UI's sliders deliver them ("CFG scale: 7", "CFG scale: 7.5").
 */
public final class A1111Parameters {
    private A1111Parameters() {
    }

    /** A LoRA used for an image: the name A1111 shows (file name without extension) and its short hash. */
    public record Lora(String name, String hash) {
    }

    /**
     * What an image was made with. Nullable fields are left out of the text.
     *
     * @param prompt positive prompt (as typed, weights and {@code <lora:…>} tags included)
     * @param negativePrompt negative prompt, "" for none
     * @param steps sampling steps
     * @param sampler A1111 sampler name ("Euler a", "DPM++ 2M")
     * @param scheduleType "Karras" or null
     * @param cfgScale classifier-free guidance scale
     * @param seed the seed
     * @param width image width
     * @param height image height
     * @param modelHash A1111's short model hash: the first 10 hex digits of the checkpoint file's SHA-256
     *     ({@link Hashes#fileSha256}), or null
     * @param modelName checkpoint file name without extension, or null
     * @param vaeHash A1111's short VAE hash (the first 10 hex digits of the VAE file's SHA-256), null when the
     *     checkpoint's own VAE was used
     * @param vaeName VAE file name, null when the checkpoint's own VAE was used
     * @param clipSkip 1 or less is left out, as A1111 does
     * @param rng A1111's noise source setting, "CPU" when the initial noise is PyTorch's CPU {@code randn}
     *     (A1111 then reproduces it from the seed), null to leave it out (A1111's default "GPU")
     * @param loras LoRAs with A1111's short hash: the first 12 hex digits of the safetensors "addnet" hash
     *     ({@link Hashes#dataSha256}, equal to kohya's {@code sshs_model_hash})
     * @param extra further {@code key: value} pairs (before Version), in order
     * @param version e.g. "tenmin 0.1.0", or null
     */
    public record Info(String prompt, String negativePrompt, int steps, String sampler, String scheduleType,
                       double cfgScale, long seed, int width, int height, String modelHash, String modelName,
                       String vaeHash, String vaeName, int clipSkip, String rng, List<Lora> loras,
                       Map<String, String> extra, String version) {
        public Info {
            loras = List.copyOf(loras);
            extra = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(extra));
        }

        /** The settings every image has; the optional fields empty. */
        public static Info basic(String prompt, String negativePrompt, int steps, String sampler, double cfgScale,
                                 long seed, int width, int height) {
            return new Info(prompt, negativePrompt, steps, sampler, null, cfgScale, seed, width, height, null, null,
                    null, null, 0, null, List.of(), Map.of(), null);
        }

        public Info withScheduleType(String type) {
            return new Info(prompt, negativePrompt, steps, sampler, type, cfgScale, seed, width, height, modelHash,
                    modelName, vaeHash, vaeName, clipSkip, rng, loras, extra, version);
        }

        public Info withModel(String hash, String name) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height, hash,
                    name, vaeHash, vaeName, clipSkip, rng, loras, extra, version);
        }

        /** With a separate VAE: its short hash and file name ("VAE hash", "VAE"). */
        public Info withVae(String hash, String name) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height,
                    modelHash, modelName, hash, name, clipSkip, rng, loras, extra, version);
        }

        public Info withRng(String source) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height,
                    modelHash, modelName, vaeHash, vaeName, clipSkip, source, loras, extra, version);
        }

        public Info withLoras(List<Lora> list) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height,
                    modelHash, modelName, vaeHash, vaeName, clipSkip, rng, list, extra, version);
        }

        public Info withExtra(Map<String, String> fields) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height,
                    modelHash, modelName, vaeHash, vaeName, clipSkip, rng, loras, fields, version);
        }

        public Info withVersion(String v) {
            return new Info(prompt, negativePrompt, steps, sampler, scheduleType, cfgScale, seed, width, height,
                    modelHash, modelName, vaeHash, vaeName, clipSkip, rng, loras, extra, v);
        }
    }

    /** The {@code parameters} text of an image. */
    public static String format(Info info) {
        Map<String, String> params = new LinkedHashMap<>();
        params.put("Steps", Integer.toString(info.steps()));
        params.put("Sampler", info.sampler());
        params.put("Schedule type", info.scheduleType());
        params.put("CFG scale", number(info.cfgScale()));
        params.put("Seed", Long.toString(info.seed()));
        params.put("Size", info.width() + "x" + info.height());
        params.put("Model hash", info.modelHash());
        params.put("Model", info.modelName());
        params.put("VAE hash", info.vaeHash());
        params.put("VAE", info.vaeName());
        params.put("Clip skip", info.clipSkip() > 1 ? Integer.toString(info.clipSkip()) : null);
        params.put("RNG", info.rng());
        if (!info.loras().isEmpty()) {
            List<String> hashes = new ArrayList<>();
            for (Lora l : info.loras()) {
                hashes.add(l.name().replace(":", "").replace(",", "") + ": " + l.hash());
            }
            params.put("Lora hashes", String.join(", ", hashes));
        }
        for (Map.Entry<String, String> e : info.extra().entrySet()) {
            params.put(e.getKey(), e.getValue());
        }
        params.put("Version", info.version());

        List<String> parts = new ArrayList<>();
        for (Map.Entry<String, String> e : params.entrySet()) {
            if (e.getValue() != null) {
                parts.add(e.getKey().equals(e.getValue()) ? e.getKey() : e.getKey() + ": " + quote(e.getValue()));
            }
        }
        String negative = info.negativePrompt() == null || info.negativePrompt().isEmpty() ? ""
                : "\nNegative prompt: " + info.negativePrompt();
        return (info.prompt() + negative + "\n" + String.join(", ", parts)).strip();
    }

    /** Whole numbers without a fraction ("7"), others as Python's repr ("7.5"). */
    private static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return PyFormat.repr(v);
    }

    /** A1111 {@code quote}: JSON-quote values with a comma, colon or newline. */
    static String quote(String v) {
        if (v.indexOf(',') < 0 && v.indexOf('\n') < 0 && v.indexOf(':') < 0) {
            return v;
        }
        return jsonString(v);
    }

    /**
     * Python's {@code json.dumps(s, ensure_ascii=False)}: it escapes exactly as serde_json does (quote,
     * backslash, \n \r \t \b \f, other control characters as lower-case {@code \}{@code u00xx}).
     */
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        SafetensorsWriter.appendJsonString(sb, s);
        return sb.toString();
    }

    // ---- reading ---------------------------------------------------------------------------------------

    /** A1111 {@code re_param_code}: {@code key: value} where value is a JSON string or runs to the next comma. */
    private static final Pattern PARAM = Pattern.compile("\\s*(\\w[\\w \\-/]+):\\s*(\"(?:\\\\.|[^\\\\\"])+\"|[^,]*)(?:,|$)",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * Reads a {@code parameters} text back as A1111's {@code parse_generation_parameters} does: "Prompt",
     * "Negative prompt", then every {@code key: value} of the last line (JSON strings unquoted), in order.
     * The last line counts as parameters only when it holds at least 3 pairs.
     */
    public static Map<String, String> parse(String text) {
        String[] lines = text.strip().split("\n", -1);
        String last = lines[lines.length - 1];
        List<String[]> pairs = new ArrayList<>();
        Matcher m = PARAM.matcher(last);
        while (m.find()) {
            pairs.add(new String[] {m.group(1), m.group(2)});
        }
        int promptLines = lines.length - 1;
        if (pairs.size() < 3) {
            promptLines = lines.length;
            pairs.clear();
        }
        StringBuilder prompt = new StringBuilder();
        StringBuilder negative = new StringBuilder();
        boolean inNegative = false;
        for (int i = 0; i < promptLines; i++) {
            String line = lines[i].strip();
            if (line.startsWith("Negative prompt:")) {
                inNegative = true;
                line = line.substring("Negative prompt:".length()).strip();
            }
            StringBuilder target = inNegative ? negative : prompt;
            if (!target.isEmpty()) {
                target.append('\n');
            }
            target.append(line);
        }
        Map<String, String> out = new LinkedHashMap<>();
        out.put("Prompt", prompt.toString());
        out.put("Negative prompt", negative.toString());
        for (String[] kv : pairs) {
            String v = kv[1];
            if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
                v = unquoteJson(v);
            }
            out.put(kv[0], v);
        }
        return out;
    }

    /** {@code json.loads} of a JSON string literal; the text itself when it is not one. */
    private static String unquoteJson(String q) {
        StringBuilder sb = new StringBuilder(q.length());
        for (int i = 1; i < q.length() - 1; i++) {
            char c = q.charAt(i);
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (i + 1 >= q.length() - 1) {
                return q;
            }
            char e = q.charAt(++i);
            switch (e) {
                case '"', '\\', '/' -> sb.append(e);
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'u' -> {
                    if (i + 4 >= q.length()) {
                        return q;
                    }
                    try {
                        sb.append((char) Integer.parseInt(q.substring(i + 1, i + 5), 16));
                    } catch (NumberFormatException ex) {
                        return q;
                    }
                    i += 4;
                }
                default -> {
                    return q;
                }
            }
        }
        return sb.toString();
    }
}
