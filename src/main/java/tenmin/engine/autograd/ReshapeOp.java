package tenmin.engine.autograd;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/** A view with another shape. Saves: the input shape. */
final class ReshapeOp extends Op {
    private final Tensor x;

    private ReshapeOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x, Shape shape) {
        Tensor y = f.backend().reshape(f.scope(), x, shape);
        if (f.records(x)) {
            f.record(new ReshapeOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "reshape";
    }

    // dx = dy viewed with x's shape. PyTorch: reshape backward.
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().reshape(bp.scratch(), bp.grad(0), x.shape()));
    }
}
