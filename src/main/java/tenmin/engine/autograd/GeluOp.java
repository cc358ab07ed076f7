package tenmin.engine.autograd;

import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Tensor;

/** GELU {@code y = x Φ(x)} (exact) or its tanh approximation. Saves: x, the approximation. */
final class GeluOp extends Op {
    private final Tensor x;
    private final GeluApproximation approximation;

    private GeluOp(Tensor x, GeluApproximation approximation) {
        this.x = x;
        this.approximation = approximation;
    }

    static Tensor forward(Functional f, Tensor x, GeluApproximation approximation) {
        Tensor y = f.backend().gelu(f.scope(), x, approximation);
        if (f.records(x)) {
            f.record(new GeluOp(x, approximation), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x};
    }

    @Override
    String name() {
        return "gelu";
    }

    // exact: dx = dy · (Φ(x) + x φ(x)).
    // tanh:  u = √(2/π)(x + 0.044715 x³), dx = dy · (½(1 + tanh u) + ½ x (1 - tanh² u) √(2/π)(1 + 3·0.044715 x²)).
    // PyTorch: aten::gelu_backward(grad, x, approximate).
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().geluBackward(bp.scratch(), bp.grad(0), x, approximation));
    }
}
