package tenmin.testing;

import java.util.Arrays;
import java.util.Locale;

/**
 * The one numeric assertion of the test suite: compares an actual array with an expected one and, on
 * failure, reports the name, shape, maximum absolute and relative error and the first bad index.
 *
 * <p>Relative error follows the fixtures' convention: {@code max|a-b| / max|b|} over the tensor.
 */
public final class Numerics {
    private Numerics() {
    }

    /** Summary of the difference between two arrays. */
    public record Diff(double maxAbs, double maxRef, int worstIndex) {
        /** {@code max|a-b| / max|b|} (0 when both are all zero). */
        public double rel() {
            return maxRef == 0 ? maxAbs : maxAbs / maxRef;
        }
    }

    /** {@code max|v|} (0 for an empty array). */
    public static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    public static Diff diff(float[] expected, float[] actual) {
        if (expected.length != actual.length) {
            throw new AssertionError("length mismatch: expected " + expected.length + ", got " + actual.length);
        }
        double maxAbs = 0;
        double maxRef = 0;
        int worst = -1;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) actual[i] - expected[i]);
            if (Double.isNaN(d)) {
                d = Double.POSITIVE_INFINITY;
            }
            if (d > maxAbs || worst < 0) {
                if (d > maxAbs) {
                    maxAbs = d;
                }
                if (worst < 0 || d >= maxAbs) {
                    worst = i;
                }
            }
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return new Diff(maxAbs, maxRef, worst);
    }

    /** Asserts {@code max|a-b| / max|b| <= relTol} (the fixtures' forward tolerance is 1e-5). */
    public static void assertRelClose(String name, long[] shape, float[] expected, float[] actual, double relTol) {
        Diff d = diff(expected, actual);
        if (!(d.rel() <= relTol)) {
            throw new AssertionError(report(name, shape, expected, actual, d,
                    String.format(Locale.ROOT, "rel %.3g > tol %.3g", d.rel(), relTol)));
        }
    }

    /** Asserts {@code |a_i-b_i| <= absTol + relTol*max|b|} for every element. */
    public static void assertClose(String name, long[] shape, float[] expected, float[] actual,
                                   double absTol, double relTol) {
        Diff d = diff(expected, actual);
        double bound = absTol + relTol * d.maxRef();
        if (!(d.maxAbs() <= bound)) {
            int first = -1;
            for (int i = 0; i < expected.length; i++) {
                double e = Math.abs((double) actual[i] - expected[i]);
                if (!(e <= bound)) {
                    first = i;
                    break;
                }
            }
            throw new AssertionError(report(name, shape, expected, actual, d,
                    String.format(Locale.ROOT, "max abs %.3g > bound %.3g (abs %.3g + rel %.3g * max|ref| %.3g);"
                            + " first bad index %s", d.maxAbs(), bound, absTol, relTol, d.maxRef(),
                            indexString(shape, first))));
        }
    }

    private static String report(String name, long[] shape, float[] expected, float[] actual, Diff d, String what) {
        int w = d.worstIndex();
        return String.format(Locale.ROOT, "%s %s: %s; max abs %.4g, rel %.4g; worst at %s: expected %s got %s",
                name, shape == null ? "" : Arrays.toString(shape), what, d.maxAbs(), d.rel(), indexString(shape, w),
                w >= 0 ? Float.toString(expected[w]) : "-", w >= 0 ? Float.toString(actual[w]) : "-");
    }

    /** Flat index rendered as a multi-index when the shape is known. */
    static String indexString(long[] shape, int flat) {
        if (flat < 0 || shape == null || shape.length == 0) {
            return Integer.toString(flat);
        }
        long[] idx = new long[shape.length];
        long rest = flat;
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = shape[i] == 0 ? 0 : rest % shape[i];
            rest = shape[i] == 0 ? rest : rest / shape[i];
        }
        return Arrays.toString(idx) + " (flat " + flat + ")";
    }
}
