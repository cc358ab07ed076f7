package tenmin.tools.resize;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import tenmin.core.InputException;
import tenmin.core.PyFormat;
import tenmin.core.PyJson;
import tenmin.lora.PythonFloat;

/**
 * One resize recipe: how each singular direction of a layer is scored and where the cut is
 * (postprocess-spec §2.2). Parsed from text such as {@code fro_ckpt=1,thr=-3.55}; several recipes are
 * separated by {@code :} and each gives its own output from the same decompositions.
 *
 * <p>Grammar (the reference's, error messages included): comma-separated {@code key=value} parts, no
 * trimming; the score weights {@code spn_lora, spn_ckpt, subspace, fro_lora, fro_ckpt, params} (a bare
 * key means 1), {@code thr} (log10 threshold), {@code size} (target size in MiB; wins over {@code thr}),
 * {@code rescale} (multiplies the kept singular values). Weights are normalised by their sum. Values are
 * parsed as Python's {@code float()} does ({@code inf}, {@code 1_000}, surrounding blanks).
 *
 * @param text       the recipe as given (recorded in {@code resize_params.recipe_str})
 * @param weights    normalised weights, in the reference's key order (the order of the JSON)
 * @param targetSize size mode target in MiB, or null
 * @param threshold  the {@code thr} value, or null (always unused when {@code targetSize} is set)
 * @param rescale    factor applied to the kept singular values
 */
public record Recipe(String text, Map<String, Double> weights, Double targetSize, Double threshold, double rescale) {

    /** The weight keys in the reference's dict order (this order is visible in {@code resize_params}). */
    public static final List<String> WEIGHT_KEYS = List.of("spn_lora", "spn_ckpt", "subspace", "fro_lora", "fro_ckpt",
            "params");

    /** The reference's default recipe since 2024-08 ({@code 00f1af4}). */
    public static final String DEFAULT = "fro_ckpt=1,thr=-3.5";

    /** A term whose |normalised weight| is at most this is skipped, as in the reference. */
    static final double WEIGHT_EPSILON = 1e-6;

    public Recipe {
        weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
    }

    /** Parses a {@code :}-separated list of recipes; every error is an {@link InputException}. */
    public static List<Recipe> parseAll(String recipes) {
        List<Recipe> out = new ArrayList<>();
        for (String r : recipes.split(":", -1)) {
            out.add(parse(r));
        }
        return out;
    }

    /** Parses one recipe with the reference's rules and messages. */
    public static Recipe parse(String recipe) {
        Map<String, Double> weights = new LinkedHashMap<>();
        for (String k : WEIGHT_KEYS) {
            weights.put(k, 0.0);
        }
        Double size = null;
        Double thr = null;
        double rescale = 1.0;
        for (String part : recipe.split(",", -1)) {
            int eq = part.indexOf('=');
            String key = eq < 0 ? part : part.substring(0, eq);
            String val = eq < 0 ? "" : part.substring(eq + 1);
            Double v = null;
            if (!val.isEmpty()) {
                v = PythonFloat.parse(val);
                if (v == null) {
                    throw new InputException("Could not parse " + key + "=" + val + " in recipe " + recipe);
                }
                if (v.isNaN()) {
                    throw new InputException("Invalid value " + key + "=" + val + " in recipe " + recipe
                            + ": not a number");
                }
            }
            if (weights.containsKey(key)) {
                if (v != null && v.isInfinite()) {
                    throw new InputException("Invalid value " + key + "=" + val + " in recipe " + recipe
                            + ": a weight must be finite");
                }
                weights.put(key, v == null ? 1.0 : v);
                continue;
            }
            if (v == null) {
                throw new InputException("Empty value not accepted for key " + key + " in recipe " + recipe);
            }
            switch (key) {
                case "size" -> size = v;
                case "thr" -> thr = v;
                case "rescale" -> rescale = v;
                default -> throw new InputException("Unknown key " + key + " in recipe " + recipe);
            }
        }
        double wsum = 0;
        for (double w : weights.values()) {
            wsum += w;
        }
        if (wsum == 0) {
            throw new InputException("At least one score type must be specified");
        }
        for (Map.Entry<String, Double> e : weights.entrySet()) {
            e.setValue(e.getValue() / wsum);
        }
        if (size == null && thr == null) {
            throw new InputException("Either 'size' or 'thr' must be specified in the recipe");
        }
        // The reference takes log10(rescale) (math domain error for <= 0) and, for size <= 0, silently
        // keeps nothing; both are refused here with a clear message instead.
        if (!(rescale > 0) || Double.isInfinite(rescale)) {
            throw new InputException("Invalid value rescale=" + PyFormat.repr(rescale) + " in recipe " + recipe
                    + ": must be a positive number");
        }
        if (size != null && (!(size > 0) || size.isInfinite())) {
            throw new InputException("Invalid value size=" + PyFormat.repr(size) + " in recipe " + recipe
                    + ": must be a positive number of MiB");
        }
        return new Recipe(recipe, weights, size, thr, rescale);
    }

    /** The normalised weight of a score term (0 when unused). */
    public double weight(String key) {
        return weights.get(key);
    }

    /** Whether a term takes part in the score ({@code |w| > 1e-6}, the reference's gate). */
    public boolean uses(String key) {
        return Math.abs(weights.get(key)) > WEIGHT_EPSILON;
    }

    public boolean sizeMode() {
        return targetSize != null;
    }

    /**
     * The output file name for a LoRA stem and the final threshold (§2.7), e.g.
     * {@code mylora_frockpt0.8_params0.2_size50_th-3.73.safetensors}.
     */
    public String outputFileName(String loraStem, double finalThreshold) {
        List<String> items = new ArrayList<>();
        for (Map.Entry<String, Double> e : new TreeMap<>(weights).entrySet()) {
            if (e.getValue() != 0) {
                items.add(e.getKey().replace("_", "") + shortFloat(e.getValue()));
            }
        }
        if (rescale != 1) {
            items.add("scale" + shortFloat(rescale));
        }
        if (targetSize != null) {
            items.add("size" + shortFloat(targetSize));
        }
        return loraStem + "_" + String.join("_", items) + "_th" + shortFloat(finalThreshold) + ".safetensors";
    }

    /**
     * The {@code resize_params} metadata value: Python's {@code json.dumps} of recipe text, weights,
     * target size, final threshold and rescale.
     */
    public String resizeParamsJson(double finalThreshold) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("recipe_str", text);
        m.put("weights", new LinkedHashMap<String, Object>(weights));
        m.put("target_size", targetSize);
        m.put("threshold", finalThreshold);
        m.put("rescale", rescale);
        return PyJson.dumps(m);
    }

    /** {@code format(v, ".2f")} with trailing zeros, then a trailing dot, stripped (§2.7). */
    static String shortFloat(double v) {
        String s = PyFormat.fixed(v, 2);
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == '0') {
            end--;
        }
        while (end > 0 && s.charAt(end - 1) == '.') {
            end--;
        }
        return s.substring(0, end);
    }
}
