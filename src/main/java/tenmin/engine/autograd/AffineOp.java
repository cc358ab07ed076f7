package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** {@code y = x · scale + shift} with scalar scale and shift. Saves: x's identity, scale. */
final class AffineOp extends Op {
    private final Tensor x;
    private final double scale;

    private AffineOp(Tensor x, double scale) {
        this.x = x;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor x, double scale, double shift) {
        Tensor y = f.backend().affine(f.scope(), x, scale, shift);
        if (f.records(x)) {
            f.record(new AffineOp(x, scale), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "affine";
    }

    // dx = dy · scale. PyTorch: mul.Scalar backward.
    @Override
    void backward(Backprop bp) {
        Tensor dy = bp.grad(0);
        bp.accumulate(x, scale == 1.0 ? dy : bp.backend().affine(bp.scratch(), dy, scale, 0.0));
    }
}
