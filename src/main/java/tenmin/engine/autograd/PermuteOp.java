package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Dimension reordering {@code y.dim(i) = x.dim(dims[i])} (contiguous). Saves: the order. */
final class PermuteOp extends Op {
    private final Tensor x;
    private final int[] dims;

    private PermuteOp(Tensor x, int[] dims) {
        this.x = x;
        this.dims = dims;
    }

    static Tensor forward(Functional f, Tensor x, int[] dims) {
        Tensor y = f.backend().permute(f.scope(), x, dims);
        if (f.records(x)) {
            f.record(new PermuteOp(x, dims.clone()), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "permute";
    }

    // dx = dy permuted by the inverse order: inverse[dims[i]] = i. PyTorch: permute backward.
    @Override
    void backward(Backprop bp) {
        int[] inverse = new int[dims.length];
        for (int i = 0; i < dims.length; i++) {
            inverse[x.shape().axis(dims[i])] = i;
        }
        bp.accumulate(x, bp.backend().permute(bp.scratch(), bp.grad(0), inverse));
    }
}
