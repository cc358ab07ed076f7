package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Matrix product {@code C = A B} with {@code A = op(a)}, {@code B = op(b)} ({@code op} transposes the
 * last two dims when asked); a (M, K)/(B, M, K), b (K, N)/(B, K, N) → C (M, N)/(B, M, N).
 * Saves: a, b and the transpose flags.
 */
final class MatmulOp extends Op {
    private final Tensor a;
    private final Tensor b;
    private final boolean transA;
    private final boolean transB;

    private MatmulOp(Tensor a, Tensor b, boolean transA, boolean transB) {
        this.a = a;
        this.b = b;
        this.transA = transA;
        this.transB = transB;
    }

    static Tensor forward(Functional f, Tensor a, Tensor b, boolean transA, boolean transB) {
        Tensor c = f.backend().matmul(f.scope(), a, b, transA, transB);
        if (f.records(a, b)) {
            f.record(new MatmulOp(a, b, transA, transB), c);
        }
        return c;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {a, b};
    }

    @Override
    String name() {
        return "matmul";
    }

    // dA = dC Bᵀ and dB = Aᵀ dC; for a stored transposed operand the gradient is transposed back:
    //   da = transA ? B dCᵀ : dC Bᵀ        db = transB ? dCᵀ A : Aᵀ dC
    // A 2-D b shared by a batched a gets the sum over the batch. PyTorch: mm/bmm backward.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Scope s = bp.scratch();
        Tensor dc = bp.grad(0);
        boolean shared = a.rank() == 3 && b.rank() == 2;
        if (bp.needs(a)) {
            Tensor da;
            if (!transA) {
                da = be.matmul(s, dc, b, false, !transB);
            } else {
                Tensor bb = shared ? be.expand(s, b, Shape.of(a.dim(0), b.dim(0), b.dim(1))) : b;
                da = be.matmul(s, bb, dc, transB, true);
            }
            bp.accumulate(a, da);
        }
        if (bp.needs(b)) {
            Tensor db = transB ? be.matmul(s, dc, a, true, transA) : be.matmul(s, a, dc, !transA, false);
            if (shared) {
                db = be.sum(s, db, new int[] {0}, false);
            }
            bp.accumulate(b, db);
        }
    }
}
