package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/**
 * An op of one input whose backward is a backend function of the output's gradient and that input (SiLU, GELU,
 * quick GELU, GEGLU). Saves: x.
 */
final class SavedInputOp extends Op {
    /** The backend's forward and backward of one such op. */
    enum Kind {
        /** SiLU {@code y = x σ(x)}; dx = dy · σ(x) (1 + x (1 - σ(x))). PyTorch: aten::silu_backward. */
        SILU("silu", Backend::silu, Backend::siluBackward),
        /** GELU {@code y = x Φ(x)}; dx = dy · (Φ(x) + x φ(x)). PyTorch: aten::gelu_backward(grad, x, "none"). */
        GELU("gelu", (b, s, x) -> b.gelu(s, x, GeluApproximation.NONE),
                (b, s, dy, x) -> b.geluBackward(s, dy, x, GeluApproximation.NONE)),
        /**
         * GELU's tanh approximation; with u = √(2/π)(x + 0.044715 x³):
         * dx = dy · (½(1 + tanh u) + ½ x (1 - tanh² u) √(2/π)(1 + 3·0.044715 x²)).
         * PyTorch: aten::gelu_backward(grad, x, "tanh").
         */
        GELU_TANH("gelu", (b, s, x) -> b.gelu(s, x, GeluApproximation.TANH),
                (b, s, dy, x) -> b.geluBackward(s, dy, x, GeluApproximation.TANH)),
        /**
         * Quick GELU {@code y = x σ(1.702 x)} (CLIP ViT-L); with s = σ(1.702 x): dx = dy · (s + 1.702 x s (1 - s)).
         * PyTorch: autograd of x * torch.sigmoid(1.702 * x).
         */
        QUICK_GELU("quickGelu", Backend::quickGelu, Backend::quickGeluBackward),
        /**
         * GEGLU {@code a · gelu(b)} over the halves [a, b] of x's last dimension, (.., 2H) → (.., H); da = dy · gelu(b),
         * db = gelu'(b) · dy · a (the backward recomputes gelu(b)). diffusers/sgm {@code GEGLU}.
         */
        GEGLU("geglu", Backend::geglu, Backend::gegluBackward);

        private final String name;
        private final Forward forward;
        private final Gradient gradient;

        Kind(String name, Forward forward, Gradient gradient) {
            this.name = name;
            this.forward = forward;
            this.gradient = gradient;
        }
    }

    @FunctionalInterface
    private interface Forward {
        Tensor apply(Backend backend, Scope s, Tensor x);
    }

    @FunctionalInterface
    private interface Gradient {
        Tensor apply(Backend backend, Scope s, Tensor dOut, Tensor x);
    }

    private final Kind kind;
    private final Tensor x;

    private SavedInputOp(Kind kind, Tensor x) {
        this.kind = kind;
        this.x = x;
    }

    static Tensor forward(Functional f, Kind kind, Tensor x) {
        Tensor y = kind.forward.apply(f.backend(), f.scope(), x);
        if (f.records(x)) {
            f.record(new SavedInputOp(kind, x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x};
    }

    @Override
    String name() {
        return kind.name;
    }

    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, kind.gradient.apply(bp.backend(), bp.scratch(), bp.grad(0), x));
    }
}
