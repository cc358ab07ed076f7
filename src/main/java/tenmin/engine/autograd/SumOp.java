package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/** Sum or mean over dimensions (empty: all). Saves: x's shape, the dims, keepDim, whether it is a mean. */
final class SumOp extends Op {
    private final Tensor x;
    private final int[] dims;
    private final boolean mean;

    private SumOp(Tensor x, int[] dims, boolean mean) {
        this.x = x;
        this.dims = dims;
        this.mean = mean;
    }

    static Tensor forward(Functional f, Tensor x, int[] dims, boolean keepDim, boolean mean) {
        Tensor y = mean ? f.backend().mean(f.scope(), x, dims, keepDim) : f.backend().sum(f.scope(), x, dims, keepDim);
        if (f.records(x)) {
            f.record(new SumOp(x, dims.clone(), mean), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return mean ? "mean" : "sum";
    }

    // sum: dx = dy broadcast back over the reduced dims;  mean: the same divided by the count.
    // PyTorch: sum.dim_IntList / mean.dim backward.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Scope s = bp.scratch();
        Shape in = x.shape();
        int[] kept = in.dims();
        long count = 1;
        if (dims.length == 0) {
            java.util.Arrays.fill(kept, 1);
            count = in.numel();
        } else {
            for (int d : dims) {
                int a = in.axis(d);
                count *= kept[a];
                kept[a] = 1;
            }
        }
        Tensor dy = be.reshape(s, bp.grad(0), Shape.of(kept));
        Tensor dx = be.expand(s, dy, in);
        bp.accumulate(x, mean ? be.affine(s, dx, 1.0 / count, 0.0) : dx);
    }
}
