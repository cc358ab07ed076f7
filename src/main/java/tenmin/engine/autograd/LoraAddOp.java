package tenmin.engine.autograd;

import tenmin.engine.api.Backend.LoraGrads;
import tenmin.engine.api.Backend.LoraResult;
import tenmin.engine.api.Tensor;

/**
 * A LoRA branch added to its linear layer's output, {@code y + scale · (x · downᵀ) · upᵀ} ({@code Backend#loraAdd}):
 * y (.., N), x (.., K), down (r, K), up (N, r). Saves: x, down, up and the hidden product {@code x · downᵀ} (.., r).
 */
final class LoraAddOp extends Op {
    private final Tensor y;
    private final Tensor x;
    private final Tensor down;
    private final Tensor up;
    private final Tensor hidden;
    private final double scale;

    private LoraAddOp(Tensor y, Tensor x, Tensor down, Tensor up, Tensor hidden, double scale) {
        this.y = y;
        this.x = x;
        this.down = down;
        this.up = up;
        this.hidden = hidden;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor y, Tensor x, Tensor down, Tensor up, double scale) {
        LoraResult r = f.backend().loraAdd(f.scope(), y, x, down, up, scale);
        if (f.records(y, x, down, up)) {
            f.record(new LoraAddOp(y, x, down, up, r.hidden(), scale), r.out());
        } else {
            r.hidden().close();
        }
        return r.out();
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, down, up, hidden};
    }

    @Override
    String name() {
        return "loraAdd";
    }

    // dy = dOut; with dB = scale · dOut: dUp = dBᵀ · h, dh = dB · up, dDown = dhᵀ · x, dx = dh · down.
    @Override
    void backward(Backprop bp) {
        Tensor dOut = bp.grad(0);
        if (bp.needs(x) || bp.needs(down) || bp.needs(up)) {
            LoraGrads g = bp.backend().loraAddBackward(bp.scratch(), dOut, x, hidden, down, up, scale, bp.needs(x),
                    bp.needs(down), bp.needs(up));
            bp.accumulate(x, g.dx());
            bp.accumulate(down, g.dDown());
            bp.accumulate(up, g.dUp());
        }
        if (bp.needs(y)) {
            bp.accumulate(y, dOut);
        }
    }
}
