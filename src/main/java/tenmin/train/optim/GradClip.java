package tenmin.train.optim;

import java.util.List;

/**
 * Global gradient-norm clipping over all LoRA tensors together (trainer-spec §7.3; PyTorch
 * {@code clip_grad_norm_}): {@code total = sqrt(Σ ||g||²)} over parameters that have a gradient, then
 * {@code g ← g · min(1, maxNorm / (total + 1e-6))}.
 */
public final class GradClip {
    private GradClip() {
    }

    /** The global L2 norm of all present gradients (summed in double). */
    public static double globalNorm(List<ParamGroup> groups) {
        double sumSq = 0;
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                if (!p.hasGrad()) {
                    continue;
                }
                for (float x : p.grad()) {
                    sumSq += (double) x * x;
                }
            }
        }
        return Math.sqrt(sumSq);
    }

    /**
     * Clips in place and returns the norm before clipping (what kohya logs as the grad norm). A
     * {@code maxNorm} of 0 or less disables clipping, as in kohya.
     */
    public static double clip(List<ParamGroup> groups, double maxNorm) {
        double total = globalNorm(groups);
        if (maxNorm <= 0) {
            return total;
        }
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1) {
            float c = (float) coef;
            for (ParamGroup g : groups) {
                for (Param p : g.params()) {
                    if (!p.hasGrad()) {
                        continue;
                    }
                    float[] gr = p.grad();
                    for (int i = 0; i < gr.length; i++) {
                        gr[i] *= c;
                    }
                }
            }
        }
        return total;
    }
}
