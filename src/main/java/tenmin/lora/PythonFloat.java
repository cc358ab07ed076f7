package tenmin.lora;

import java.util.regex.Pattern;

/** Python's {@code float(str)} for the number syntax block vectors use. */
public final class PythonFloat {
    /** Optional sign; digits with single underscores, optional point and exponent; inf/infinity/nan. */
    private static final Pattern SYNTAX = Pattern.compile("[+-]?(?:"
            + "(?:\\d(?:_?\\d)*)?\\.?\\d(?:_?\\d)*(?:[eE][+-]?\\d(?:_?\\d)*)?"
            + "|\\d(?:_?\\d)*\\.(?:[eE][+-]?\\d(?:_?\\d)*)?"
            + "|(?i:inf|infinity|nan))");

    private PythonFloat() {
    }

    /**
     * The value of {@code text} as Python's {@code float()} reads it (surrounding whitespace ignored,
     * {@code 1_0}, {@code .5}, {@code 2.}, {@code 1e-3}, {@code inf}, {@code nan} accepted), or null when
     * Python would raise ValueError.
     */
    public static Double parse(String text) {
        String s = text.strip();
        if (!SYNTAX.matcher(s).matches()) {
            return null;
        }
        String lower = s.toLowerCase(java.util.Locale.ROOT);
        boolean negative = lower.startsWith("-");
        String body = lower.startsWith("-") || lower.startsWith("+") ? lower.substring(1) : lower;
        if (body.equals("inf") || body.equals("infinity")) {
            return negative ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
        }
        if (body.equals("nan")) {
            return Double.NaN;
        }
        return Double.parseDouble(s.replace("_", ""));
    }

    /** Like {@link #parse} but finite values only (null for inf/nan and for syntax errors). */
    public static Double parseFinite(String text) {
        Double v = parse(text);
        return v == null || !Double.isFinite(v) ? null : v;
    }
}
