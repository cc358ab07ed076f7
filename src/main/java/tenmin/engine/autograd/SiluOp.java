package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** SiLU {@code y = x σ(x)}. Saves: x. */
final class SiluOp extends Op {
    private final Tensor x;

    private SiluOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x) {
        Tensor y = f.backend().silu(f.scope(), x);
        if (f.records(x)) {
            f.record(new SiluOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x};
    }

    @Override
    String name() {
        return "silu";
    }

    // dx = dy · σ(x) (1 + x (1 - σ(x))). PyTorch: aten::silu_backward.
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().siluBackward(bp.scratch(), bp.grad(0), x));
    }
}
