package tenmin.train.schedule;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The rules of the {@code piecewise_constant} schedule, as diffusers' {@code get_piecewise_constant_schedule} reads
 * its {@code step_rules} string: comma-separated {@code multiplier:step} rules and a last bare multiplier, e.g.
 * {@code 1:10,0.1:20,0.01:30,0.005}. After k scheduler steps the factor is the multiplier of the smallest rule step
 * greater than k (the rules are sorted by step, so their order in the text does not matter), or the last multiplier
 * when k reaches every rule step: above, 1 for k in [0, 10), 0.1 for [10, 20), 0.01 for [20, 30), 0.005 from 30 on.
 * The steps are absolute step numbers (diffusers' docstring speaks of "the next 20 steps"; its code, which is what
 * runs, compares k with each step).
 *
 * @param steps       the rule steps, ascending and distinct
 * @param multipliers the factor below each of {@code steps}
 * @param last        the factor from the last rule step on
 */
public record StepRules(List<Long> steps, List<Double> multipliers, double last) {
    /** A whole number as Python's {@code int()} reads one (without underscores). */
    private static final Pattern INT = Pattern.compile("[+-]?\\d+");
    /** A decimal number as Python's {@code float()} reads one (without underscores, inf or nan). */
    private static final Pattern FLOAT = Pattern.compile("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");

    public StepRules {
        steps = List.copyOf(steps);
        multipliers = List.copyOf(multipliers);
        if (steps.size() != multipliers.size()) {
            throw new IllegalArgumentException(steps.size() + " rule steps for " + multipliers.size() + " multipliers");
        }
        for (int i = 1; i < steps.size(); i++) {
            if (steps.get(i) <= steps.get(i - 1)) {
                throw new IllegalArgumentException("rule steps must ascend: " + steps);
            }
        }
    }

    /**
     * Parses a {@code step_rules} string.
     *
     * @throws IllegalArgumentException with a one-line reason when a rule is not {@code multiplier:step}, the last
     *                                  item is not a bare multiplier, a step is negative or given twice, or a
     *                                  multiplier is negative or not a finite number
     */
    public static StepRules parse(String text) {
        String[] items = text.split(",", -1);
        Map<Long, Double> rules = new TreeMap<>();
        for (int i = 0; i < items.length - 1; i++) {
            String[] parts = items[i].split(":", -1);
            if (parts.length != 2) {
                throw new IllegalArgumentException("'" + items[i].strip() + "' is not multiplier:step (every item but"
                        + " the last is a rule, the last a bare multiplier)");
            }
            double value = multiplier(parts[0]);
            String s = parts[1].strip();
            if (!INT.matcher(s).matches()) {
                throw new IllegalArgumentException("'" + s + "' in '" + items[i].strip() + "' is not a whole step number");
            }
            long step;
            try {
                step = Long.parseLong(s.startsWith("+") ? s.substring(1) : s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("step " + s + " is too large");
            }
            if (step < 0) {
                throw new IllegalArgumentException("step " + step + " is negative");
            }
            if (rules.put(step, value) != null) {
                throw new IllegalArgumentException("step " + step + " has two rules");
            }
        }
        String lastItem = items[items.length - 1];
        if (lastItem.contains(":")) {
            throw new IllegalArgumentException("the last item '" + lastItem.strip() + "' must be a bare multiplier (the"
                    + " factor after the last rule step), e.g. 1:10,0.1:20,0.01");
        }
        return new StepRules(new ArrayList<>(rules.keySet()), new ArrayList<>(rules.values()), multiplier(lastItem));
    }

    private static double multiplier(String text) {
        String s = text.strip();
        if (!FLOAT.matcher(s).matches()) {
            throw new IllegalArgumentException("'" + s + "' is not a multiplier (a number such as 0.1 or 1e-2)");
        }
        double v = Double.parseDouble(s);
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException("multiplier " + s + " must be zero or positive");
        }
        return v;
    }

    /** The factor after {@code k} scheduler steps. */
    public double factor(long k) {
        for (int i = 0; i < steps.size(); i++) {
            if (k < steps.get(i)) {
                return multipliers.get(i);
            }
        }
        return last;
    }

    /** The rules as a {@code step_rules} string in ascending step order. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < steps.size(); i++) {
            sb.append(multipliers.get(i)).append(':').append(steps.get(i)).append(',');
        }
        return sb.append(last).toString();
    }
}
