package tenmin.train.optim;

import java.util.List;

/**
 * Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", Algorithm 2), as kohya's
 * {@code lion_pytorch.Lion} runs it:
 * <pre>
 * P *= 1 - lr·wd
 * P -= lr · sign(β1·m + (1-β1)·g)
 * m  = β2·m + (1-β2)·g
 * </pre>
 */
public final class Lion extends Optimizer {

    /** Hyper-parameters; {@link #DEFAULTS}: betas (0.9, 0.99), weight_decay 0 (lion-pytorch). */
    public record Hyper(double beta1, double beta2, double weightDecay) {
        public static final Hyper DEFAULTS = new Hyper(0.9, 0.99, 0.0);
    }

    private final Hyper h;

    public Lion(Hyper h) {
        super("Lion", "lion_pytorch.lion_pytorch.Lion", List.of("exp_avg"));
        this.h = h;
    }

    @Override
    protected void update(Param p, Slot slot, double lr) {
        float[] g = p.grad();
        float[] w = p.value();
        float[] m = slot.buffers.get("exp_avg");
        double decay = 1 - lr * h.weightDecay();
        for (int i = 0; i < g.length; i++) {
            double c = h.beta1() * m[i] + (1 - h.beta1()) * g[i];
            w[i] = (float) (w[i] * decay - lr * Math.signum(c));
            m[i] = (float) (h.beta2() * m[i] + (1 - h.beta2()) * g[i]);
        }
    }
}
