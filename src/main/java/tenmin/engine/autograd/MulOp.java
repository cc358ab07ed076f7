package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Tensor;

/** Broadcasting elementwise product {@code y = a b}. Saves: a, b. */
final class MulOp extends Op {
    private final Tensor a;
    private final Tensor b;

    private MulOp(Tensor a, Tensor b) {
        this.a = a;
        this.b = b;
    }

    static Tensor forward(Functional f, Tensor a, Tensor b) {
        Tensor y = f.backend().mul(f.scope(), a, b);
        if (f.records(a, b)) {
            f.record(new MulOp(a, b), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {a, b};
    }

    @Override
    String name() {
        return "mul";
    }

    // da = Σ_broadcast dy · b;  db = Σ_broadcast dy · a. PyTorch: mul.Tensor backward.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Tensor dy = bp.grad(0);
        if (bp.needs(a)) {
            bp.accumulate(a, bp.sumToShape(be.mul(bp.scratch(), dy, b), a.shape()));
        }
        if (bp.needs(b)) {
            bp.accumulate(b, bp.sumToShape(be.mul(bp.scratch(), dy, a), b.shape()));
        }
    }
}
