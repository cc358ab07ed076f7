package tenmin.engine.autograd;

import tenmin.engine.api.DType;
import tenmin.engine.api.Tensor;

/** Dtype conversion (the mixed-precision boundary). Saves: x's dtype. */
final class CastOp extends Op {
    private final Tensor x;

    private CastOp(Tensor x) {
        this.x = x;
    }

    static Tensor forward(Functional f, Tensor x, DType dtype) {
        Tensor y = f.backend().cast(f.scope(), x, dtype);
        if (f.records(x)) {
            f.record(new CastOp(x), y);
        }
        return y;
    }

    /** Records the cast of {@code x} whose result {@code copy} was made earlier (and x has not changed since: {@link KeptCast}). */
    static Tensor reuse(Functional f, Tensor x, Tensor copy) {
        if (f.records(x)) {
            f.record(new CastOp(x), copy);
        }
        return copy;
    }

    @Override
    Tensor[] reads() {
        return NONE;
    }

    @Override
    String name() {
        return "cast";
    }

    // dx = dy converted back to x's dtype (an fp32 LoRA parameter gets an fp32 gradient). PyTorch: _to_copy backward.
    // A parameter's gradient takes dy in its own dtype directly (the conversion happens in the accumulation).
    @Override
    void backward(Backprop bp) {
        bp.accumulateConverting(x, bp.grad(0));
    }
}
