package tenmin.core;

import java.util.List;
import java.util.Map;

/**
 * JSON text exactly as Python's {@code json.dumps} writes it with default arguments: separators
 * {@code ", "} and {@code ": "}, floats as {@code repr} ({@code 0.5}, {@code 1e-07}), non-finite floats
 * as {@code Infinity}, {@code -Infinity}, {@code NaN}, {@code None} as {@code null}, and
 * {@code ensure_ascii} escaping (every non-ASCII UTF-16 unit as a lowercase {@code \\uXXXX}).
 *
 * <p>Used for metadata values the reference tools write with {@code json.dumps} (resize's
 * {@code resize_params}) and for files they write with {@code json.dump} (the norms cache).
 */
public final class PyJson {
    private PyJson() {
    }

    /**
     * Serialises maps (insertion order kept), lists, int/long arrays, strings, numbers, booleans and null. A
     * {@link Double} or {@link Float} is a Python float; other {@link Number}s are Python ints.
     */
    public static String dumps(Object value) {
        StringBuilder sb = new StringBuilder();
        append(sb, value);
        return sb.toString();
    }

    /** JSON text already rendered, embedded as it is (a value the reference nests as an object). */
    public record Raw(String json) {
    }

    private static void append(StringBuilder sb, Object v) {
        switch (v) {
            case null -> sb.append("null");
            case Raw r -> sb.append(r.json());
            case String s -> appendString(sb, s, true);
            case Boolean b -> sb.append(b ? "true" : "false");
            case Double d -> sb.append(floatText(d));
            case Float f -> sb.append(floatText(f.doubleValue()));
            case Number n -> sb.append(n.toString());
            case int[] a -> {
                sb.append('[');
                for (int i = 0; i < a.length; i++) {
                    sb.append(i == 0 ? "" : ", ").append(a[i]);
                }
                sb.append(']');
            }
            case long[] a -> {
                sb.append('[');
                for (int i = 0; i < a.length; i++) {
                    sb.append(i == 0 ? "" : ", ").append(a[i]);
                }
                sb.append(']');
            }
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    appendString(sb, String.valueOf(e.getKey()), true);
                    sb.append(": ");
                    append(sb, e.getValue());
                }
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) {
                        sb.append(", ");
                    }
                    append(sb, l.get(i));
                }
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("cannot serialise " + v.getClass().getName());
        }
    }

    /** {@code float.__repr__}, with json's spellings of the non-finite values. */
    static String floatText(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        return PyFormat.repr(d);
    }

    /**
     * A JSON string literal: quote, backslash, {@code \\n \\r \\t \\b \\f} escaped, other control
     * characters as a lowercase {@code \\u00xx}; with {@code ensureAscii} (Python's default) every character
     * outside space..~ as {@code \\uXXXX}, without it (serde_json, the safetensors header writer) raw.
     */
    public static void appendString(StringBuilder sb, String s, boolean ensureAscii) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
