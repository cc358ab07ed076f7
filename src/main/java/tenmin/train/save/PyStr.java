package tenmin.train.save;

import java.util.List;

import tenmin.core.PyFormat;
import tenmin.core.PyJson;

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

    /** {@code json.dumps(v)} with Python's default separators and ASCII escaping ({@link PyJson}). */
    public static String json(Object v) {
        return PyJson.dumps(v);
    }
}
