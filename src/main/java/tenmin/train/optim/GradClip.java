package tenmin.train.optim;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Global gradient-norm clipping over all LoRA tensors together (trainer-spec §7.3; PyTorch
 * {@code clip_grad_norm_}): {@code total = sqrt(Σ ||g||²)} over parameters that have a gradient, then
 * {@code g ← g · min(1, maxNorm / (total + 1e-6))}.
 */
public final class GradClip {
    private GradClip() {
    }

    /**
     * The global L2 norm of all present gradients: each parameter's sum of squares in double (the parameters in
     * parallel), added in parameter order, so the result does not depend on the threads.
     */
    public static double globalNorm(List<ParamGroup> groups) {
        List<Param> present = present(groups);
        double[] sums = new double[present.size()];
        IntStream.range(0, sums.length).parallel().forEach(i -> {
            double s = 0;
            for (float x : present.get(i).grad()) {
                s += (double) x * x;
            }
            sums[i] = s;
        });
        double sumSq = 0;
        for (double s : sums) {
            sumSq += s;
        }
        return Math.sqrt(sumSq);
    }

    private static List<Param> present(List<ParamGroup> groups) {
        List<Param> out = new ArrayList<>();
        for (ParamGroup g : groups) {
            for (Param p : g.params()) {
                if (p.hasGrad()) {
                    out.add(p);
                }
            }
        }
        return out;
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
            present(groups).parallelStream().forEach(p -> {
                float[] gr = p.grad();
                for (int i = 0; i < gr.length; i++) {
                    gr[i] *= c;
                }
            });
        }
        return total;
    }
}
