package tenmin.engine.autograd;

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
        bp.accumulate(bp.backend().linearBackward(bp.scratch(), bp.grad(0), x, weight, bp.mask(x, weight, bias)), x,
                weight, bias);
    }
}
