package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Linear layer {@code y = x Wᵀ + b}: x (.., K), weight (N, K), bias (N) or null → y (.., N).
 * Saves: x (for dWeight), weight (for dx), whether there is a bias.
 */
final class LinearOp extends Op {
    private final Tensor x;
    private final Tensor weight;
    private final Tensor bias;

    private LinearOp(Tensor x, Tensor weight, Tensor bias) {
        this.x = x;
        this.weight = weight;
        this.bias = bias;
    }

    static Tensor forward(Functional f, Tensor x, Tensor weight, Tensor bias) {
        Tensor y = f.backend().linear(f.scope(), x, weight, bias);
        if (f.records(x, weight, bias)) {
            f.record(new LinearOp(x, weight, bias), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, weight};
    }

    @Override
    String name() {
        return "linear";
    }

    // With rows flattened to M: dx = dy · W (M, K); dW = dyᵀ · x (N, K); db = Σ_rows dy (N).
    // PyTorch: the backward of F.linear (addmm): mm(grad, weight), mm(grad.t(), input), grad.sum(0).
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Scope s = bp.scratch();
        Tensor dy = bp.grad(0);
        int n = dy.dim(-1);
        int k = x.dim(-1);
        int m = (int) (dy.numel() / n);
        Tensor dy2 = be.reshape(s, dy, Shape.of(m, n));                       // (M, N)
        if (bp.needs(x)) {
            Tensor dx2 = be.matmul(s, dy2, weight, false, false);             // (M, K)
            bp.accumulate(x, be.reshape(s, dx2, x.shape()));
        }
        if (bp.needs(weight)) {
            Tensor x2 = be.reshape(s, x, Shape.of(m, k));                     // (M, K)
            bp.accumulate(weight, be.matmul(s, dy2, x2, true, false));        // (N, K)
        }
        if (bp.needs(bias)) {
            bp.accumulate(bias, be.sum(s, dy2, new int[] {0}, false));        // (N)
        }
    }
}
