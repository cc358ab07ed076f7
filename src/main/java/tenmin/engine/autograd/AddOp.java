package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/** Broadcasting {@code y = a + α b} (add, sub, residual paths, biases). Saves: the shapes of a and b, α. */
final class AddOp extends Op {
    private final Tensor a;
    private final Tensor b;
    private final Shape shapeA;
    private final Shape shapeB;
    private final double alpha;

    private AddOp(Tensor a, Tensor b, double alpha) {
        this.a = a;
        this.b = b;
        this.shapeA = a.shape();
        this.shapeB = b.shape();
        this.alpha = alpha;
    }

    static Tensor forward(Functional f, Tensor a, Tensor b, double alpha) {
        Tensor y = f.backend().add(f.scope(), a, b, alpha);
        if (f.records(a, b)) {
            f.record(new AddOp(a, b, alpha), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "add";
    }

    // da = Σ_broadcast dy;  db = α Σ_broadcast dy. PyTorch: add.Tensor backward (sum_to_size).
    // Only a's and b's identities are kept (to route the gradients), not their values.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Tensor dy = bp.grad(0);
        if (bp.needs(a)) {
            bp.accumulate(a, bp.sumToShape(dy, shapeA));
        }
        if (bp.needs(b)) {
            Tensor db = bp.sumToShape(dy, shapeB);
            bp.accumulate(b, alpha == 1.0 ? db : be.affine(bp.scratch(), db, alpha, 0.0));
        }
    }
}
