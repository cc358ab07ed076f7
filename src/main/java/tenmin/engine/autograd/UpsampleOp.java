package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Nearest 2x upsampling (N, C, H, W) → (N, C, 2H, 2W). Saves: x's identity. */
final class UpsampleOp extends Op {
    private final Tensor x;

    private UpsampleOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x) {
        Tensor y = f.backend().upsampleNearest2x(f.scope(), x);
        if (f.records(x)) {
            f.record(new UpsampleOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "upsampleNearest2x";
    }

    // dx[n,c,i,j] = Σ_{a,b ∈ {0,1}} dy[n,c,2i+a,2j+b]. PyTorch: aten::upsample_nearest2d_backward.
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().upsampleNearest2xBackward(bp.scratch(), bp.grad(0)));
    }
}
