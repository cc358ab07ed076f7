package tenmin.train.noise;

/**
 * kohya's per-image loss weights from the timestep's signal-to-noise ratio ({@link DdpmSchedule#snr}), for
 * epsilon prediction: {@code --min_snr_gamma γ} weighs an image's loss by {@code min(SNR, γ) / SNR} (Hang et
 * al., "Efficient Diffusion Training via Min-SNR Weighting Strategy"; 5 is the common choice), and
 * {@code --debiased_estimation_loss} by {@code 1 / √min(SNR, 1000)}. With both, the weights multiply (kohya applies
 * them one after the other). The weighted loss is {@code mean_b(w_b · mean_{C,H,W}((ε̂ − ε)²))}; the guide's
 * recipe uses neither.
 *
 * <p>With v-prediction ({@code --v_parameterization}) min-SNR weighs by {@code min(SNR, γ) / (SNR + 1)};
 * {@code --scale_v_pred_loss_like_noise_pred} multiplies by {@code s = SNR' / (SNR' + 1)} and
 * {@code --v_pred_like_loss λ} (epsilon prediction only) adds {@code λ · loss / s}, with SNR' = min(SNR, 1000); all
 * after min-SNR and before the debiased weight, as the reference applies them.
 *
 * <p>With regularisation images ({@code --reg_data_dir}) their losses are first multiplied by
 * {@code --prior_loss_weight} (kohya's {@code loss_weights} of the batch), then the SNR weights apply.
 *
 * @param minSnrGamma     γ, or 0 for no min-SNR weighting (kohya's {@code if args.min_snr_gamma})
 * @param debiased        the debiased-estimation weighting
 * @param priorLossWeight the weight of a regularisation image's loss (1: as a training image's)
 * @param vPrediction     the model predicts v (min-SNR divides by SNR + 1)
 * @param scaleVPredLikeNoise {@code --scale_v_pred_loss_like_noise_pred}
 * @param vPredLikeLoss   {@code --v_pred_like_loss} λ (0: off)
 */
public record LossWeighting(double minSnrGamma, boolean debiased, double priorLossWeight, boolean vPrediction,
                            boolean scaleVPredLikeNoise, double vPredLikeLoss) {
    /** No weighting: every image's loss counts once (the guide's recipe). */
    public static final LossWeighting NONE = new LossWeighting(0, false);

    /** The SNR weightings, regularisation images weighing as training images. */
    public LossWeighting(double minSnrGamma, boolean debiased) {
        this(minSnrGamma, debiased, 1.0);
    }

    /** Epsilon prediction's weightings. */
    public LossWeighting(double minSnrGamma, boolean debiased, double priorLossWeight) {
        this(minSnrGamma, debiased, priorLossWeight, false, false, 0);
    }
    /** The SNR cap of the debiased weighting (kohya's: the SNR at timestep 0 may be very large). */
    static final float DEBIASED_SNR_CAP = 1000f;

    public LossWeighting {
        if (!(minSnrGamma >= 0) || Double.isInfinite(minSnrGamma)) {
            throw new IllegalArgumentException("min-SNR gamma must be a finite number >= 0, not " + minSnrGamma);
        }
        if (!(priorLossWeight >= 0) || Double.isInfinite(priorLossWeight)) {
            throw new IllegalArgumentException("the prior loss weight must be a finite number >= 0, not "
                    + priorLossWeight);
        }
        if (!Double.isFinite(vPredLikeLoss)) {
            throw new IllegalArgumentException("v_pred_like_loss must be finite, not " + vPredLikeLoss);
        }
    }

    /** Whether any weighting applies. */
    public boolean active() {
        return minSnrGamma > 0 || debiased || scaleVPredLikeNoise || vPredLikeLoss != 0;
    }

    /**
     * The weight of each image of a micro-batch (float32, as the reference's tensors), or null when no
     * weighting applies.
     */
    public float[] weights(DdpmSchedule schedule, int[] timesteps) {
        return weights(schedule, timesteps, null);
    }

    /**
     * {@link #weights(DdpmSchedule, int[])} for a micro-batch whose images {@code reg[b]} are regularisation images
     * (null: none); null when every weight is 1.
     */
    public float[] weights(DdpmSchedule schedule, int[] timesteps, boolean[] reg) {
        boolean prior = false;
        for (int b = 0; reg != null && b < reg.length; b++) {
            prior |= reg[b] && priorLossWeight != 1;
        }
        if (!active() && !prior) {
            return null;
        }
        float gamma = (float) minSnrGamma;   // torch.full_like(snr, gamma): float32
        float[] w = new float[timesteps.length];
        for (int b = 0; b < w.length; b++) {
            float snr = schedule.snr(timesteps[b]);
            float weight = reg != null && reg[b] ? (float) priorLossWeight : 1f;
            if (minSnrGamma > 0) {
                weight *= Math.min(snr, gamma) / (vPrediction ? snr + 1f : snr);
            }
            float capped = Math.min(snr, DEBIASED_SNR_CAP);
            float scale = capped / (capped + 1f);
            if (scaleVPredLikeNoise) {
                weight *= scale;
            }
            if (vPredLikeLoss != 0) {
                weight += weight / scale * (float) vPredLikeLoss;
            }
            if (debiased) {
                weight *= 1f / (float) Math.sqrt(Math.min(snr, DEBIASED_SNR_CAP));
            }
            w[b] = weight;
        }
        return w;
    }

    /** For logs: {@code min-SNR gamma 5.0}, {@code debiased estimation}, both, or {@code none}. */
    public String describe() {
        if (!active()) {
            return "none";
        }
        java.util.List<String> parts = new java.util.ArrayList<>();
        if (minSnrGamma > 0) {
            parts.add("min-SNR gamma " + minSnrGamma);
        }
        if (scaleVPredLikeNoise) {
            parts.add("v-prediction loss scaled like noise prediction");
        }
        if (vPredLikeLoss != 0) {
            parts.add("v-prediction-like loss " + vPredLikeLoss);
        }
        if (debiased) {
            parts.add("debiased estimation");
        }
        return String.join(" and ", parts);
    }
}
