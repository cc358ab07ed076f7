package tenmin.engine.autograd;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/** Broadcast of x to a larger shape, materialised. Saves: x's shape. */
final class ExpandOp extends Op {
    private final Tensor x;

    private ExpandOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x, Shape shape) {
        Tensor y = f.backend().expand(f.scope(), x, shape);
        if (f.records(x)) {
            f.record(new ExpandOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "expand";
    }

    // dx = Σ of dy over the broadcast dimensions. PyTorch: expand backward (sum_to_size).
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.sumToShape(bp.grad(0), x.shape()));
    }
}
