package tenmin.train.noise;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How the training noise of a micro-batch is drawn (kohya's {@code get_noise_noisy_latents_and_timesteps};
 * {@link NoiseSampler#noised}). The guide's recipe uses multires noise only.
 *
 * @param offset               {@code --noise_offset}: a per-channel constant {@code offset · N(0,1)} added to the
 *                             noise (0: off)
 * @param offsetRandomStrength {@code --noise_offset_random_strength}: the offset's strength is
 *                             {@code U(0,1) · offset}, drawn once per micro-batch
 * @param adaptiveScale        {@code --adaptive_noise_scale}: each channel's offset strength grows by this times the
 *                             absolute mean of the channel's latents (clamped at 0; may be negative), or null
 * @param multiresIterations   {@code --multires_noise_iterations}: pyramid levels (0: off)
 * @param multiresDiscount     {@code --multires_noise_discount}: the pyramid's discount per level
 * @param ipGamma              {@code --ip_noise_gamma}: input perturbation; the model sees
 *                             {@code x_t} noised with {@code ε + γ·N(0,1)} while the target stays {@code ε} (Ning et
 *                             al., "Input Perturbation Reduces Exposure Bias in Diffusion Models"; 0: off)
 * @param ipRandomStrength     {@code --ip_noise_gamma_random_strength}: γ is {@code U(0,1) · ip_noise_gamma}, drawn
 *                             once per micro-batch
 * @param zeroTerminalSnr      {@code --zero_terminal_snr}: the schedule rescaled so the last timestep is pure noise
 *                             ({@link DdpmSchedule#withZeroTerminalSnr})
 */
public record NoiseOptions(double offset, boolean offsetRandomStrength, Double adaptiveScale, int multiresIterations,
                           double multiresDiscount, double ipGamma, boolean ipRandomStrength, boolean zeroTerminalSnr) {

    /** Plain Gaussian noise. */
    public static final NoiseOptions GAUSSIAN = new NoiseOptions(0, false, null, 0, 0.3, 0, false);

    /** Options on the SDXL schedule as it is. */
    public NoiseOptions(double offset, boolean offsetRandomStrength, Double adaptiveScale, int multiresIterations,
                        double multiresDiscount, double ipGamma, boolean ipRandomStrength) {
        this(offset, offsetRandomStrength, adaptiveScale, multiresIterations, multiresDiscount, ipGamma, ipRandomStrength,
                false);
    }

    /** The training schedule: SDXL's, rescaled with {@link #zeroTerminalSnr}. */
    public DdpmSchedule schedule() {
        return zeroTerminalSnr ? DdpmSchedule.sdxl().withZeroTerminalSnr() : DdpmSchedule.sdxl();
    }

    public NoiseOptions {
        if (!(offset >= 0) || !(ipGamma >= 0) || !(multiresDiscount >= 0) || multiresIterations < 0) {
            throw new IllegalArgumentException("noise options must be >= 0: offset " + offset + ", ip gamma " + ipGamma
                    + ", multires " + multiresIterations + " / " + multiresDiscount);
        }
        if (adaptiveScale != null && (offset == 0 || !Double.isFinite(adaptiveScale))) {
            throw new IllegalArgumentException("an adaptive noise scale needs a noise offset (and a finite value)");
        }
    }

    /** Multires noise only (the guide's recipe), or plain Gaussian noise when {@code iterations} is 0. */
    public static NoiseOptions multires(int iterations, double discount) {
        return new NoiseOptions(0, false, null, iterations, discount, 0, false);
    }

    /** For logs: {@code multires 12 levels, discount 0.4}, {@code noise offset 0.05}, ..., or {@code gaussian}. */
    public String describe() {
        List<String> parts = new ArrayList<>();
        if (offset > 0) {
            parts.add("noise offset " + offset + (offsetRandomStrength ? " (random strength)" : "")
                    + (adaptiveScale != null ? String.format(Locale.ROOT, ", adaptive scale %s", adaptiveScale) : ""));
        }
        if (multiresIterations > 0) {
            parts.add("multires " + multiresIterations + " levels, discount " + multiresDiscount);
        }
        if (ipGamma > 0) {
            parts.add("input perturbation gamma " + ipGamma + (ipRandomStrength ? " (random strength)" : ""));
        }
        if (zeroTerminalSnr) {
            parts.add("zero terminal SNR");
        }
        return parts.isEmpty() ? "gaussian" : String.join("; ", parts);
    }
}
