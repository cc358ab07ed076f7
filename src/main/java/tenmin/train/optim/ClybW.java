package tenmin.train.optim;

import java.util.List;

/**
 * ClybW: ka-de sd-scripts' {@code library.optimizers.clybius.Compass} (trainer-spec §1), with its exact
 * float32 arithmetic (see {@link TorchCpuFloat}); {@code --optimizer_type=LodeW} is the same algorithm with
 * the plain Compass defaults.
 *
 * <p>Per parameter with gradient G (modified in place, as the reference does), step t:
 * <pre>
 * G -= centralization · mean_row(G)                      (row = dim 0; all dims for 1-D)
 * G /= std_row(G, unbiased) + 1e-8                       (normalization ≠ 0; quirk Q1: the blend is a no-op)
 * m  = β1·m + (1-β1)·G ;  G += amp·m ;  v = β2·v + (1-β2)·G²
 * D  = sqrt(v)/sqrt(1-β2^t) + eps ; s = lr/(1-β1^t)
 * P *= 1 - s·wd ;  P -= s·G/D
 * </pre>
 */
public final class ClybW extends Optimizer {

    /**
     * Hyper-parameters (class defaults of {@code clybius.Compass}, trainer-spec §1.2).
     *
     * @param beta1             EMA coefficient of the gradient
     * @param beta2             EMA coefficient of the squared amplified gradient
     * @param ampFac            amplification of the first moment
     * @param eps               added to the denominator outside the root
     * @param weightDecay       decoupled, times the bias-corrected step size
     * @param centralization    fraction of the per-row mean subtracted
     * @param normalization     non-zero: divide by the per-row std (any value acts as 1, quirk Q1)
     * @param normalizeChannels per row (dim 0) rather than over the whole tensor
     */
    public record Hyper(double beta1, double beta2, double ampFac, double eps, double weightDecay,
                        double centralization, double normalization, boolean normalizeChannels) {
        /** ClybW ({@code clybius.Compass}) defaults: betas (0.95, 0.95), amp 2, eps 1e-8, wd 0.1, 0.5, 0.5, true. */
        public static final Hyper CLYBW = new Hyper(0.95, 0.95, 2.0, 1e-8, 0.1, 0.5, 0.5, true);
        /** LodeW ({@code compass.Compass}, lodestone-rock) defaults: betas (0.9, 0.999), amp 2, eps 1e-8, no wd/centering/normalising. */
        public static final Hyper LODEW = new Hyper(0.9, 0.999, 2.0, 1e-8, 0.0, 0.0, 0.0, false);
    }

    private final Hyper h;

    public ClybW(Hyper h) {
        this(h, "ClybW", "library.optimizers.clybius.Compass");
    }

    /** The plain Compass ({@code --optimizer_type=LodeW}). */
    public static ClybW lodeW(Hyper h) {
        return new ClybW(h, "LodeW", "library.optimizers.compass.Compass");
    }

    private ClybW(Hyper h, String type, String metadataName) {
        super(type, metadataName, List.of("ema", "ema_squared"));
        this.h = h;
    }

    public Hyper hyper() {
        return h;
    }

    @Override
    protected void update(Param p, Slot slot, double lr) {
        float[] g = p.grad();
        float[] w = p.value();
        float[] m = slot.buffers.get("ema");
        float[] v = slot.buffers.get("ema_squared");
        int n = g.length;
        long t = slot.step;
        // mean(dim=tuple(range(1, ndim))): per row for ndim >= 2; an empty dim tuple reduces everything
        int rows = p.rank() >= 2 ? p.rows() : 1;
        int cols = n / rows;
        if (h.centralization() != 0) {
            float c = (float) h.centralization();
            for (int r = 0; r < rows; r++) {
                float mu = TorchCpuFloat.mean(g, r * cols, cols) * c;
                for (int i = r * cols; i < (r + 1) * cols; i++) {
                    g[i] -= mu;
                }
            }
        }
        if (h.normalization() != 0) {
            if (p.rank() > 1 && h.normalizeChannels()) {
                for (int r = 0; r < rows; r++) {
                    divideByStd(g, r * cols, cols);
                }
            } else if (n > 2) {
                divideByStd(g, 0, n);
            }
        }
        double bc1 = 1 - Math.pow(h.beta1(), t);
        double bc2Sqrt = Math.pow(1 - Math.pow(h.beta2(), t), 0.5);
        double stepSize = lr / bc1;
        // Python floats meet float32 tensors: each scalar is rounded to float32 once
        float beta1 = (float) h.beta1();
        float oneMinusBeta1 = (float) (1 - h.beta1());
        float amp = (float) h.ampFac();
        float beta2 = (float) h.beta2();
        float oneMinusBeta2 = (float) (1 - h.beta2());
        float bc2 = (float) bc2Sqrt;
        float eps = (float) h.eps();
        float decay = (float) (1 - stepSize * h.weightDecay());
        float negStep = (float) -stepSize;
        boolean decays = h.weightDecay() != 0;
        for (int i = 0; i < n; i++) {
            float mi = Math.fma(g[i], oneMinusBeta1, m[i] * beta1);   // ema.mul_(β1).add_(G, alpha=1-β1)
            m[i] = mi;
            float gi = Math.fma(mi, amp, g[i]);                       // G.add_(ema, alpha=amp)
            g[i] = gi;
            float vi = Math.fma(oneMinusBeta2 * gi, gi, v[i] * beta2); // ema_sq.mul_(β2).addcmul_(G, G, value=1-β2)
            v[i] = vi;
            float denom = (float) Math.sqrt(vi) / bc2 + eps;
            float wi = decays ? w[i] * decay : w[i];
            w[i] = wi + negStep * gi / denom;                          // addcdiv_: self + value*t1/t2
        }
    }

    private static void divideByStd(float[] g, int off, int n) {
        float s = TorchCpuFloat.stdUnbiased(g, off, n) + 1e-8f;
        for (int i = off; i < off + n; i++) {
            g[i] /= s;
        }
    }
}
