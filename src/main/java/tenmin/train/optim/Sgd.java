package tenmin.train.optim;

import java.util.List;

/**
 * SGD with momentum, as {@code torch.optim.SGD} defines it (Sutskever et al. 2013 form):
 * <pre>
 * g' = g + wd·P
 * b  = g'                       (first step)
 * b  = μ·b + (1-dampening)·g'   (later steps)
 * d  = nesterov ? g' + μ·b : b  (μ = 0: d = g')
 * P -= lr·d
 * </pre>
 * {@code --optimizer_type=SGDNesterov} is this with μ = 0.9 and nesterov on (kohya's default).
 */
public final class Sgd extends Optimizer {

    /** Hyper-parameters; {@link #PLAIN} is torch's default (no momentum), {@link #NESTEROV} kohya's SGDNesterov. */
    public record Hyper(double momentum, double dampening, double weightDecay, boolean nesterov) {
        public static final Hyper PLAIN = new Hyper(0, 0, 0, false);
        public static final Hyper NESTEROV = new Hyper(0.9, 0, 0, true);

        public Hyper {
            if (nesterov && (momentum <= 0 || dampening != 0)) {
                throw new IllegalArgumentException("Nesterov momentum requires a momentum and zero dampening");
            }
        }
    }

    private final Hyper h;

    public Sgd(Hyper h) {
        super("SGD", "torch.optim.sgd.SGD", h.momentum() != 0 ? List.of("momentum_buffer") : List.of());
        this.h = h;
    }

    @Override
    protected void update(Param p, Slot slot, double lr) {
        float[] g = p.grad();
        float[] w = p.value();
        float[] b = h.momentum() != 0 ? slot.buffers.get("momentum_buffer") : null;
        boolean first = slot.step == 1;
        for (int i = 0; i < g.length; i++) {
            double d = g[i] + h.weightDecay() * w[i];
            if (b != null) {
                double bi = first ? d : h.momentum() * b[i] + (1 - h.dampening()) * d;
                b[i] = (float) bi;
                d = h.nesterov() ? d + h.momentum() * bi : bi;
            }
            w[i] = (float) (w[i] - lr * d);
        }
    }
}
