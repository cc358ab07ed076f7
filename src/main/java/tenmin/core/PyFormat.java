package tenmin.core;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * Python's number formatting, which the reference tools' log lines and file names rely on
 * (postprocess-spec §1.3).
 *
 * <ul>
 * <li>{@link #fixed}: {@code format(v, ".2f")}: rounds the exact binary value half-to-even
 *     ({@code 2.675 → "2.67"}, {@code -3.555 → "-3.56"}), keeps the sign of negative values that round to
 *     zero ({@code "-0.00"}), prints {@code inf}, {@code -inf}, {@code nan}.
 * <li>{@link #repr}: {@code repr(float)}: the shortest decimal that round-trips, {@code 0.5}, {@code 2.0},
 *     {@code 1e-07}, {@code 1e+16}.
 * </ul>
 */
public final class PyFormat {
    private PyFormat() {
    }

    /** {@code format(v, "." + digits + "f")}. */
    public static String fixed(double v, int digits) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        String s = new BigDecimal(v).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
        boolean negative = v < 0 || (v == 0 && 1 / v < 0);
        if (negative && !s.startsWith("-")) {
            s = "-" + s;
        }
        return s;
    }

    /** {@code repr(v)} of a Python float. */
    public static String repr(double v) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        if (v == 0) {
            return 1 / v < 0 ? "-0.0" : "0.0";
        }
        String sign = v < 0 ? "-" : "";
        // Double.toString gives the shortest round-tripping decimal (JDK 19+), only in another layout
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(v))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int exp10 = digits.length() - 1 - bd.scale();
        if (exp10 >= -5 + 1 && exp10 < 16) {
            String plain = bd.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        String e = Integer.toString(Math.abs(exp10));
        return sign + mantissa + "e" + (exp10 < 0 ? "-" : "+") + (e.length() < 2 ? "0" + e : e);
    }
}
