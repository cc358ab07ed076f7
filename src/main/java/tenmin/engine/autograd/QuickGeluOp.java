package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Quick GELU {@code y = x σ(1.702 x)} (CLIP ViT-L). Saves: x. */
final class QuickGeluOp extends Op {
    private final Tensor x;

    private QuickGeluOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x) {
        Tensor y = f.backend().quickGelu(f.scope(), x);
        if (f.records(x)) {
            f.record(new QuickGeluOp(x), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x};
    }

    @Override
    String name() {
        return "quickGelu";
    }

    // With s = σ(1.702 x): dx = dy · (s + 1.702 x s (1 - s)). PyTorch: autograd of x * torch.sigmoid(1.702 * x).
    @Override
    void backward(Backprop bp) {
        bp.accumulate(x, bp.backend().quickGeluBackward(bp.scratch(), bp.grad(0), x));
    }
}
