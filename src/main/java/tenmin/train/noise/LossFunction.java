package tenmin.train.noise;

import java.util.Locale;

import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * kohya's {@code --loss_type} with its {@code --huber_schedule} and {@code --huber_c} ({@code conditional_loss},
 * {@code get_timesteps_and_huber_c} of the reference's sd-scripts, 2024): per element of d = ε̂ − ε,
 * <ul>
 * <li>{@code l2}: d² (the recipe's MSE);</li>
 * <li>{@code huber}: {@code 2c·(√(d² + c²) − c)} — quadratic (≈ d²) for |d| ≪ c, linear beyond: large errors pull
 * less;</li>
 * <li>{@code smooth_l1}: {@code 2·(√(d² + c²) − c)}.</li>
 * </ul>
 * The threshold c follows the micro-batch's timestep: {@code snr} (the default) {@code (1 − c₀)/(1 + σ)² + c₀} with
 * {@code σ = √((1 − ᾱ)/ᾱ)} (near 1 at low noise, towards c₀ at high noise), {@code exponential}
 * {@code exp(ln(c₀)·t/1000)}, {@code constant} c₀. As in that version of the reference, these two losses draw one
 * timestep for the whole micro-batch (so that c is one number); l2 draws one per image.
 *
 * @param type     the loss
 * @param schedule how c follows the timestep (huber and smooth_l1 only)
 * @param huberC   c₀, in (0, 1]
 */
public record LossFunction(Type type, Schedule schedule, double huberC) {

    /** {@code --loss_type}. */
    public enum Type {
        L2, HUBER, SMOOTH_L1;

        /** The flag's spelling. */
        public String flagName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** {@code --huber_schedule}. */
    public enum Schedule {
        SNR, EXPONENTIAL, CONSTANT;

        /** The flag's spelling. */
        public String flagName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The recipe's MSE (kohya's defaults for the unused Huber settings). */
    public static final LossFunction L2 = new LossFunction(Type.L2, Schedule.SNR, 0.1);

    public LossFunction {
        if (!(huberC > 0 && huberC <= 1)) {
            throw new IllegalArgumentException("huber_c must lie in (0, 1], not " + huberC);
        }
    }

    /** Whether one timestep serves the whole micro-batch (huber and smooth_l1, as the reference draws them). */
    public boolean sharedTimestep() {
        return type != Type.L2;
    }

    /** c at timestep {@code t} of {@code ddpm} (float32 where the reference computes with tensors). */
    public float thresholdAt(DdpmSchedule ddpm, int t) {
        return switch (schedule) {
            case SNR -> {
                float ac = ddpm.alphaCumprod(t);
                float sigma = (float) Math.sqrt((1f - ac) / ac);
                float c0 = (float) huberC;
                float onePlus = 1f + sigma;
                yield (1f - c0) / (onePlus * onePlus) + c0;
            }
            case EXPONENTIAL -> (float) Math.exp(Math.log(huberC) / ddpm.numTimesteps() * t);
            case CONSTANT -> (float) huberC;
        };
    }

    /**
     * The elementwise loss of {@code d} (ε̂ − ε, F32) with threshold {@code c} for huber and smooth_l1, in the
     * reference's order of operations; differentiable.
     */
    public Tensor elementwise(Functional f, Tensor d, float c) {
        Tensor squared = f.mul(d, d);
        if (type == Type.L2) {
            return squared;
        }
        Tensor excess = f.affine(f.unary(Unary.SQRT, f.affine(squared, 1.0, (double) (c * c))), 1.0, -c);
        return f.scale(excess, type == Type.HUBER ? 2.0 * c : 2.0);
    }

    /** This loss with the threshold of timestep {@code t}: what one micro-batch computes. */
    public AtStep at(DdpmSchedule ddpm, int t) {
        return new AtStep(this, type == Type.L2 ? Float.NaN : thresholdAt(ddpm, t));
    }

    /** A loss with its threshold for one micro-batch. */
    public record AtStep(LossFunction function, float c) {
        /** {@link LossFunction#elementwise} with this threshold. */
        public Tensor elementwise(Functional f, Tensor d) {
            return function.elementwise(f, d, c);
        }
    }

    /** For logs: {@code huber, c 0.1 (snr schedule)}. */
    public String describe() {
        return type == Type.L2 ? "l2" : String.format(Locale.ROOT, "%s, c %s (%s schedule)", type.flagName(), huberC,
                schedule.flagName());
    }
}
