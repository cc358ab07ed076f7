package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Mean squared error {@code L = mean((pred - target)²)}, a scalar. Saves: pred, target. */
final class MseLossOp extends Op {
    private final Tensor pred;
    private final Tensor target;

    private MseLossOp(Tensor pred, Tensor target) {
        this.pred = pred;
        this.target = target;
    }

    static Tensor forward(Functional f, Tensor pred, Tensor target) {
        Tensor loss = f.backend().mseLoss(f.scope(), pred, target);
        if (f.records(pred, target)) {
            f.record(new MseLossOp(pred, target), loss);
        }
        return loss;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {pred, target};
    }

    @Override
    String name() {
        return "mseLoss";
    }

    // dpred = dL · 2 (pred - target) / numel;  dtarget = -dpred. PyTorch: aten::mse_loss_backward.
    @Override
    void backward(Backprop bp) {
        Tensor dPred = bp.backend().mseLossBackward(bp.scratch(), bp.grad(0), pred, target);
        bp.accumulate(pred, dPred);
        if (bp.needs(target)) {
            bp.accumulate(target, bp.backend().affine(bp.scratch(), dPred, -1.0, 0.0));
        }
    }
}
