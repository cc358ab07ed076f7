package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/** Broadcasting elementwise quotient {@code y = a / b}. Saves: a, b. */
final class DivOp extends Op {
    private final Tensor a;
    private final Tensor b;

    private DivOp(Tensor a, Tensor b) {
        this.a = a;
        this.b = b;
    }

    static Tensor forward(Functional f, Tensor a, Tensor b) {
        Tensor y = f.backend().div(f.scope(), a, b);
        if (f.records(a, b)) {
            f.record(new DivOp(a, b), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {a, b};
    }

    @Override
    String name() {
        return "div";
    }

    // da = Σ_broadcast dy / b;  db = -Σ_broadcast dy · a / b². PyTorch: div.Tensor backward.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Scope s = bp.scratch();
        Tensor dy = bp.grad(0);
        Tensor dyOverB = be.div(s, dy, b);
        if (bp.needs(a)) {
            bp.accumulate(a, bp.sumToShape(dyOverB, a.shape()));
        }
        if (bp.needs(b)) {
            Tensor t = be.div(s, be.mul(s, dyOverB, a), b);
            bp.accumulate(b, bp.sumToShape(be.affine(s, t, -1.0, 0.0), b.shape()));
        }
    }
}
