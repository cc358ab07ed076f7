package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Elements {@code [start, start+length)} of one dimension (split, chunk, slices). Saves: x's shape, dim, start. */
final class NarrowOp extends Op {
    private final Tensor x;
    private final int dim;
    private final int start;

    private NarrowOp(Tensor x, int dim, int start) {
        this.x = x;
        this.dim = dim;
        this.start = start;
    }

    static Tensor forward(Functional f, Tensor x, int dim, int start, int length) {
        Tensor y = f.backend().narrow(f.scope(), x, dim, start, length);
        if (f.records(x)) {
            f.record(new NarrowOp(x, dim, start), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "narrow";
    }

    // dx = zeros of x's shape with dy at [start, start+length) of dim. PyTorch: aten::slice_backward.
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().narrowBackward(bp.scratch(), bp.grad(0), x.shape(), dim, start));
    }
}
