package tenmin.train.save;

import java.util.List;
import java.util.Map;

import tenmin.core.PyFormat;

/**
 * Python's {@code str()} and {@code json.dumps()} renderings, which kohya's metadata values use: floats as
 * {@code repr} ({@code 0.0003}, {@code 4.0}), booleans {@code True}/{@code False}, {@code None}, tuples
 * {@code (1024, 1024)}; JSON with {@code ", "} and {@code ": "} separators and non-ASCII escaped as
 * {@code \\uXXXX} ({@code ensure_ascii=True}).
 */
public final class PyStr {
    private PyStr() {
    }

    /** {@code str(v)} for None, bool, int, float, str, and tuples (given as a List). */
    public static String str(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (v instanceof Double || v instanceof Float) {
            return PyFormat.repr(((Number) v).doubleValue());
        }
        if (v instanceof Number n) {
            return Long.toString(n.longValue());
        }
        if (v instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("(");
            for (int i = 0; i < l.size(); i++) {
                sb.append(i == 0 ? "" : ", ").append(repr(l.get(i)));
            }
            return sb.append(l.size() == 1 ? ",)" : ")").toString();
        }
        return v.toString();
    }

    /** {@code repr(v)}: strings quoted with single quotes, everything else as {@link #str}. */
    public static String repr(Object v) {
        if (v instanceof String s) {
            return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
        }
        return str(v);
    }

    /** {@code json.dumps(v)} with Python's default separators and ASCII escaping. */
    public static String json(Object v) {
        StringBuilder sb = new StringBuilder();
        appendJson(sb, v);
        return sb.toString();
    }

    private static void appendJson(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity")
                    : PyFormat.repr(d));
        } else if (v instanceof Number n) {
            sb.append(n.longValue());
        } else if (v instanceof String s) {
            appendJsonString(sb, s);
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                sb.append(first ? "" : ", ");
                first = false;
                appendJsonString(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                appendJson(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof List<?> l) {
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                sb.append(i == 0 ? "" : ", ");
                appendJson(sb, l.get(i));
            }
            sb.append(']');
        } else if (v instanceof int[] a) {
            sb.append('[');
            for (int i = 0; i < a.length; i++) {
                sb.append(i == 0 ? "" : ", ").append(a[i]);
            }
            sb.append(']');
        } else {
            throw new IllegalArgumentException("cannot render " + v.getClass() + " as JSON");
        }
    }

    private static void appendJsonString(StringBuilder sb, String s) {
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
                    if (c < 0x20 || c > 0x7E) {
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
