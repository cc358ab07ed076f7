package tenmin.train.schedule;

import java.util.Locale;

/**
 * Learning-rate schedules as transformers' {@code get_scheduler} defines them (trainer-spec §7.4): a
 * factor λ(k) that multiplies each group's base lr, k = number of scheduler steps taken so far. Optimizer
 * step s (1-based) uses λ(s−1); the lr logged after step s is λ(s).
 *
 * <p>W = warm-up steps, N = total steps, p = (k−W)/max(1, N−W):
 * <ul>
 * <li>{@code constant}: 1
 * <li>{@code constant_with_warmup}: k/max(1,W) during warm-up, then 1
 * <li>{@code linear}: warm-up, then max(0, (N−k)/max(1, N−W))
 * <li>{@code cosine}: warm-up, then max(0, ½(1 + cos(2π·cycles·p))) — cycles 0.5 by default
 * <li>{@code cosine_with_restarts}: warm-up, then 0 for p ≥ 1, else max(0, ½(1 + cos(π·((cycles·p) mod 1))))
 * <li>{@code polynomial}: warm-up, then ((lr0 − lrEnd)(1 − p)^power + lrEnd)/lr0; lrEnd/lr0 after N
 * </ul>
 *
 * @param kind        which formula
 * @param warmupSteps W
 * @param totalSteps  N (the run's optimizer steps)
 * @param numCycles   cosine: cycles over the run (may be fractional); restarts: number of hard restarts
 * @param power       polynomial exponent
 * @param lrEnd       polynomial final lr
 * @param lrInit      polynomial: the optimizer's default lr ({@code --learning_rate})
 */
public record LrSchedule(Kind kind, long warmupSteps, long totalSteps, double numCycles, double power, double lrEnd,
                         double lrInit) {

    /** The schedulers kohya's {@code --lr_scheduler} accepts that tenmin implements. */
    public enum Kind {
        CONSTANT, CONSTANT_WITH_WARMUP, LINEAR, COSINE, COSINE_WITH_RESTARTS, POLYNOMIAL;

        /** The flag value ({@code cosine_with_restarts}). */
        public String flagName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** Parses a flag value; null when unknown. */
        public static Kind parse(String s) {
            for (Kind k : values()) {
                if (k.flagName().equals(s)) {
                    return k;
                }
            }
            return null;
        }
    }

    public LrSchedule {
        if (warmupSteps < 0 || totalSteps < 0) {
            throw new IllegalArgumentException("negative step counts: warmup " + warmupSteps + ", total " + totalSteps);
        }
        if (kind == Kind.POLYNOMIAL && !(lrInit > lrEnd)) {
            throw new IllegalArgumentException("polynomial schedule: lr_end (" + lrEnd + ") must be smaller than the"
                    + " initial lr (" + lrInit + ")");
        }
    }

    /** A schedule with transformers' defaults for the other parameters (cosine cycles 0.5, restarts 1, power 1). */
    public static LrSchedule of(Kind kind, long warmupSteps, long totalSteps) {
        double cycles = kind == Kind.COSINE_WITH_RESTARTS ? 1 : 0.5;
        return new LrSchedule(kind, warmupSteps, totalSteps, cycles, 1.0, 1e-7, 1.0);
    }

    /** λ(k): the factor after k scheduler steps. */
    public double factor(long k) {
        if (kind == Kind.CONSTANT) {
            return 1.0;
        }
        if (k < warmupSteps) {
            return (double) k / Math.max(1, warmupSteps);
        }
        double progress = (double) (k - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        return switch (kind) {
            case CONSTANT, CONSTANT_WITH_WARMUP -> 1.0;
            case LINEAR -> Math.max(0.0, (double) (totalSteps - k) / Math.max(1, totalSteps - warmupSteps));
            case COSINE -> Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 2.0 * numCycles * progress)));
            case COSINE_WITH_RESTARTS -> progress >= 1.0 ? 0.0
                    : Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * ((numCycles * progress) % 1.0))));
            case POLYNOMIAL -> {
                if (k > totalSteps) {
                    yield lrEnd / lrInit;
                }
                double remaining = 1 - (double) (k - warmupSteps) / (totalSteps - warmupSteps);
                yield ((lrInit - lrEnd) * Math.pow(remaining, power) + lrEnd) / lrInit;
            }
        };
    }

    /** The lr of a group with {@code baseLr} at optimizer step {@code s} (1-based): baseLr · λ(s−1). */
    public double lrForStep(double baseLr, long s) {
        return baseLr * factor(s - 1);
    }
}
