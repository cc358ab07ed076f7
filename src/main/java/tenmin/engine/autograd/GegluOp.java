package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/**
 * GEGLU {@code a · gelu(b)} over the halves [a, b] of x's last dimension ({@code Backend#geglu}): (.., 2H) → (.., H).
 * Saves: x (the backward recomputes gelu(b)).
 */
final class GegluOp extends Op {
    private final Tensor x;

    private GegluOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x) {
        Tensor y = f.backend().geglu(f.scope(), x);
        if (f.records(x)) {
            f.record(new GegluOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x};
    }

    @Override
    String name() {
        return "geglu";
    }

    // da = dy · gelu(b); db = gelu'(b) · dy · a; dx = [da, db].
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().gegluBackward(bp.scratch(), bp.grad(0), x));
    }
}
