package tenmin.train.noise;

import java.util.Locale;

import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.DType;
import tenmin.engine.api.Shape;
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
 * The threshold c follows each image's timestep: {@code snr} (the default) {@code (1 − c₀)/(1 + σ)² + c₀} with
 * {@code σ = √((1 − ᾱ)/ᾱ)} (near 1 at low noise, towards c₀ at high noise), {@code exponential}
 * {@code exp(ln(c₀)·t/1000)}, {@code constant} c₀; float32 as the reference's tensors.
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

    /**
     * c at timestep {@code t} of {@code ddpm} in the reference's float32 arithmetic ({@code get_timesteps_and_huber_c}:
     * {@code exp(-α·t)} with α = −ln(c₀)/1000, {@code (1 − c₀)/(1 + σ)² + c₀}, or c₀).
     */
    public float thresholdAt(DdpmSchedule ddpm, int t) {
        return switch (schedule) {
            case SNR -> {
                float ac = ddpm.alphaCumprod(t);
                float sigma = (float) Math.sqrt((1f - ac) / ac);
                float onePlus = 1f + sigma;
                yield (float) (1 - huberC) / (onePlus * onePlus) + (float) huberC;
            }
            case EXPONENTIAL -> (float) Math.exp((float) (Math.log(huberC) / ddpm.numTimesteps()) * (float) t);
            case CONSTANT -> (float) huberC;
        };
    }

    /**
     * The elementwise loss of {@code d} (ε̂ − ε, (N, C, H, W) F32) with image b's threshold {@code c[b]}, in the
     * reference's order of operations ({@code 2c·(√(d² + c²) − c)}, or without the leading c for smooth_l1);
     * differentiable in d.
     */
    public Tensor elementwise(Functional f, Tensor d, float[] c) {
        Tensor squared = f.mul(d, d);
        if (type == Type.L2) {
            return squared;
        }
        int n = c.length;
        float[] c2 = new float[n];
        float[] twoC = new float[n];
        for (int b = 0; b < n; b++) {
            c2[b] = c[b] * c[b];
            twoC[b] = 2 * c[b];
        }
        Tensor excess = f.sub(f.unary(Unary.SQRT, f.add(squared, perImage(f, c2, d))), perImage(f, c, d));
        return type == Type.HUBER ? f.mul(perImage(f, twoC, d), excess) : f.scale(excess, 2.0);
    }

    /** {@code values[b]} broadcast over image b of {@code like} (N, C, H, W), F32, without gradient. */
    private static Tensor perImage(Functional f, float[] values, Tensor like) {
        Tensor column = f.scope().fromHost(values, Shape.of(values.length, 1, 1, 1), DType.F32);
        return f.expand(column, like.shape());
    }

    /** This loss with the thresholds of each image's timestep: what one micro-batch computes. */
    public AtStep at(DdpmSchedule ddpm, int[] timesteps) {
        float[] c = new float[timesteps.length];
        for (int b = 0; b < c.length; b++) {
            c[b] = type == Type.L2 ? Float.NaN : thresholdAt(ddpm, timesteps[b]);
        }
        return new AtStep(this, c);
    }

    /** A loss with the thresholds of one micro-batch's images. */
    public record AtStep(LossFunction function, float[] c) {
        /** {@link LossFunction#elementwise} with these thresholds. */
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
