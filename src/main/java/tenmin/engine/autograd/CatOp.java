package tenmin.engine.autograd;

import java.util.List;

import tenmin.engine.api.Tensor;

/** Concatenation along one dimension (skip connections, contexts). Saves: the inputs' identities and sizes, dim. */
final class CatOp extends Op {
    private final List<Tensor> xs;
    private final int dim;

    private CatOp(List<Tensor> xs, int dim) {
        this.xs = xs;
        this.dim = dim;
    }

    static Tensor forward(Functional f, List<Tensor> xs, int dim) {
        Tensor y = f.backend().cat(f.scope(), xs, dim);
        if (f.records(xs.toArray(new Tensor[0]))) {
            f.record(new CatOp(List.copyOf(xs), dim), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "cat";
    }

    // dx_i = dy[offset_i : offset_i + size_i] along dim. PyTorch: cat backward (narrow of the gradient).
    @Override
    void backward(Backprop bp) {
        Tensor dy = bp.grad(0);
        int offset = 0;
        for (Tensor x : xs) {
            int size = x.dim(dim);
            if (bp.needs(x)) {
                bp.accumulate(x, bp.backend().narrow(bp.scratch(), dy, dim, offset, size));
            }
            offset += size;
        }
    }
}
