package tenmin.core;

import java.util.Arrays;

/** Summaries of measurements (the benchmarks' medians). */
public final class Stats {
    private Stats() {
    }

    /** The median of {@code v} (the upper one of an even count), {@code v} left as it is. */
    public static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
