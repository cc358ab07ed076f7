package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Tensor;

/** Zero padding of the last two dimensions. Saves: x's shape, left and top. */
final class Pad2dOp extends Op {
    private final Tensor x;
    private final int left;
    private final int top;

    private Pad2dOp(Tensor x, int left, int top) {
        this.x = x;
        this.left = left;
        this.top = top;
    }

    static Tensor forward(Functional f, Tensor x, int left, int right, int top, int bottom) {
        Tensor y = f.backend().pad2d(f.scope(), x, left, right, top, bottom);
        if (f.records(x)) {
            f.record(new Pad2dOp(x, left, top), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "pad2d";
    }

    // dx = dy[.., top : top+H, left : left+W]. PyTorch: constant_pad_nd backward.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Tensor rows = be.narrow(bp.scratch(), bp.grad(0), -2, top, x.dim(-2));
        bp.accumulate(x, be.narrow(bp.scratch(), rows, -1, left, x.dim(-1)));
    }
}
