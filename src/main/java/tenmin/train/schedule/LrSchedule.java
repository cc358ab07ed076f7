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
 * <li>{@code inverse_sqrt}: warm-up, then 1/√((k + τ − W)/τ), τ the timescale (default W, or 10000 without
 *     warm-up)
 * <li>{@code cosine_with_min_lr}: warm-up, then max(0, m + (1 − m)·½(1 + cos(2π·cycles·p))), m the minimum lr ratio
 * <li>{@code warmup_stable_decay}: warm-up, 1 for the N − W − D stable steps, then over the D decay steps
 *     m + (1 − m)·max(0, ½(1 + cos(2π·cycles·q))) with q the decay's progress; m after them
 * <li>{@code piecewise_constant}: the {@link StepRules} factor; no warm-up (the reference passes diffusers'
 *     function only its {@code step_rules})
 * </ul>
 *
 * @param kind        which formula
 * @param warmupSteps W
 * @param totalSteps  N (the run's optimizer steps)
 * @param numCycles   cosine: cycles over the run (may be fractional); restarts: number of hard restarts
 * @param power       polynomial exponent
 * @param lrEnd       polynomial final lr
 * @param lrInit      polynomial: the optimizer's default lr ({@code --learning_rate})
 * @param decaySteps  warmup_stable_decay: D
 * @param minLrRatio  cosine_with_min_lr, warmup_stable_decay: m
 * @param timescale   inverse_sqrt: τ (0: its default)
 * @param stepRules   piecewise_constant: its rules (null for the other kinds)
 */
public record LrSchedule(Kind kind, long warmupSteps, long totalSteps, double numCycles, double power, double lrEnd,
                         double lrInit, long decaySteps, double minLrRatio, double timescale, StepRules stepRules) {

    /** The schedulers kohya's {@code --lr_scheduler} accepts that tenmin implements. */
    public enum Kind {
        CONSTANT, CONSTANT_WITH_WARMUP, LINEAR, COSINE, COSINE_WITH_RESTARTS, POLYNOMIAL, INVERSE_SQRT,
        COSINE_WITH_MIN_LR, WARMUP_STABLE_DECAY, PIECEWISE_CONSTANT;

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
        if (decaySteps < 0 || decaySteps > Math.max(0, totalSteps - warmupSteps) && kind == Kind.WARMUP_STABLE_DECAY) {
            throw new IllegalArgumentException("decay steps " + decaySteps + " do not fit " + totalSteps + " steps after "
                    + warmupSteps + " of warm-up");
        }
        if (kind == Kind.POLYNOMIAL && !(lrInit > lrEnd)) {
            throw new IllegalArgumentException("polynomial schedule: lr_end (" + lrEnd + ") must be smaller than the"
                    + " initial lr (" + lrInit + ")");
        }
        if ((kind == Kind.PIECEWISE_CONSTANT) != (stepRules != null)) {
            throw new IllegalArgumentException("step rules belong to piecewise_constant, and it needs them");
        }
    }

    /** A schedule of the kinds without step rules. */
    public LrSchedule(Kind kind, long warmupSteps, long totalSteps, double numCycles, double power, double lrEnd,
                      double lrInit, long decaySteps, double minLrRatio, double timescale) {
        this(kind, warmupSteps, totalSteps, numCycles, power, lrEnd, lrInit, decaySteps, minLrRatio, timescale, null);
    }

    /** A {@code piecewise_constant} schedule over {@code totalSteps} steps. */
    public static LrSchedule piecewise(StepRules rules, long totalSteps) {
        return new LrSchedule(Kind.PIECEWISE_CONSTANT, 0, totalSteps, 0, 1, 0, 1, 0, 0, 0, rules);
    }

    /** A schedule with transformers' defaults for the other parameters (cosine cycles 0.5, restarts 1, power 1). */
    public static LrSchedule of(Kind kind, long warmupSteps, long totalSteps) {
        double cycles = kind == Kind.COSINE_WITH_RESTARTS ? 1 : 0.5;
        return new LrSchedule(kind, warmupSteps, totalSteps, cycles, 1.0, 1e-7, 1.0);
    }

    /** A schedule of the first six kinds (no decay steps, minimum ratio or timescale). */
    public LrSchedule(Kind kind, long warmupSteps, long totalSteps, double numCycles, double power, double lrEnd,
                      double lrInit) {
        this(kind, warmupSteps, totalSteps, numCycles, power, lrEnd, lrInit, 0, 0, 0);
    }

    /** λ(k): the factor after k scheduler steps. */
    public double factor(long k) {
        if (kind == Kind.CONSTANT) {
            return 1.0;
        }
        if (kind == Kind.PIECEWISE_CONSTANT) {
            return stepRules.factor(k);
        }
        if (k < warmupSteps) {
            return (double) k / Math.max(1, warmupSteps);
        }
        double progress = (double) (k - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        return switch (kind) {
            case INVERSE_SQRT -> {
                double tau = timescale > 0 ? timescale : warmupSteps > 0 ? warmupSteps : 10_000;
                yield 1.0 / Math.sqrt((k + tau - warmupSteps) / tau);
            }
            case COSINE_WITH_MIN_LR -> Math.max(0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress))
                    * (1 - minLrRatio) + minLrRatio);
            case WARMUP_STABLE_DECAY -> {
                long stable = totalSteps - warmupSteps - decaySteps;
                if (k < warmupSteps + stable) {
                    yield 1.0;
                }
                if (k < warmupSteps + stable + decaySteps) {
                    double q = (double) (k - warmupSteps - stable) / Math.max(1, decaySteps);
                    double value = Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * q)));
                    yield (1.0 - minLrRatio) * value + minLrRatio;
                }
                yield minLrRatio;
            }
            case CONSTANT, CONSTANT_WITH_WARMUP -> 1.0;
            case PIECEWISE_CONSTANT -> stepRules.factor(k);
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
