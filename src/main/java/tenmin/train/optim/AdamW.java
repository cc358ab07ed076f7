package tenmin.train.optim;

import java.util.List;

/**
 * AdamW (Loshchilov &amp; Hutter, "Decoupled Weight Decay Regularization"), as {@code torch.optim.AdamW}
 * computes it (non-amsgrad): per element, in double, stored as float32.
 * <pre>
 * P *= 1 - lr·wd
 * m = β1·m + (1-β1)·g ;  v = β2·v + (1-β2)·g²
 * P -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
 * </pre>
 */
public final class AdamW extends Optimizer {

    /** Hyper-parameters; {@link #DEFAULTS} are torch's (betas (0.9, 0.999), eps 1e-8, weight_decay 0.01). */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay) {
        public static final Hyper DEFAULTS = new Hyper(0.9, 0.999, 1e-8, 0.01);
    }

    private final Hyper h;

    public AdamW(Hyper h) {
        super("AdamW", "torch.optim.adamw.AdamW", List.of("exp_avg", "exp_avg_sq"));
        this.h = h;
    }

    @Override
    protected void update(Param p, Slot slot, double lr) {
        float[] g = p.grad();
        float[] w = p.value();
        float[] m = slot.buffers.get("exp_avg");
        float[] v = slot.buffers.get("exp_avg_sq");
        long t = slot.step;
        double bc1 = 1 - Math.pow(h.beta1(), t);
        double bc2Sqrt = Math.sqrt(1 - Math.pow(h.beta2(), t));
        double stepSize = lr / bc1;
        double decay = 1 - lr * h.weightDecay();
        for (int i = 0; i < g.length; i++) {
            double gi = g[i];
            double mi = h.beta1() * m[i] + (1 - h.beta1()) * gi;
            double vi = h.beta2() * v[i] + (1 - h.beta2()) * gi * gi;
            m[i] = (float) mi;
            v[i] = (float) vi;
            double denom = Math.sqrt(vi) / bc2Sqrt + h.eps();
            w[i] = (float) (w[i] * decay - stepSize * mi / denom);
        }
    }
}
