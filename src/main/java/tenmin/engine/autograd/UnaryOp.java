package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/** An elementwise function {@code y = op(x)} of {@link Unary}. Saves: x, y, the function. */
final class UnaryOp extends Op {
    private final Unary op;
    private final Tensor x;
    private final Tensor y;

    private UnaryOp(Unary op, Tensor x, Tensor y) {
        this.op = op;
        this.x = x;
        this.y = y;
    }

    static Tensor forward(Functional f, Unary op, Tensor x) {
        Tensor y = f.backend().unary(f.scope(), op, x);
        if (f.records(x)) {
            f.record(new UnaryOp(op, x, y), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, y};
    }

    @Override
    String name() {
        return op.name().toLowerCase(java.util.Locale.ROOT);
    }

    // exp: dy·y   log: dy/x   sqrt: dy·½/y   rsqrt: dy·(-½)y³   square: dy·2x   neg: -dy   abs: dy·sign(x)
    // sign: 0   sigmoid: dy·y(1-y)   tanh: dy·(1-y²)   sin: dy·cos x   cos: -dy·sin x. PyTorch: the ops' backward formulas.
    @Override
    void backward(Backprop bp) {
        Backend be = bp.backend();
        Scope s = bp.scratch();
        Tensor dy = bp.grad(0);
        Tensor dx = switch (op) {
            case EXP -> be.mul(s, dy, y);
            case LOG -> be.div(s, dy, x);
            case SQRT -> be.affine(s, be.div(s, dy, y), 0.5, 0.0);
            case RSQRT -> be.mul(s, be.affine(s, dy, -0.5, 0.0), be.mul(s, y, be.unary(s, Unary.SQUARE, y)));
            case SQUARE -> be.mul(s, be.affine(s, dy, 2.0, 0.0), x);
            case NEG -> be.affine(s, dy, -1.0, 0.0);
            case ABS -> be.mul(s, dy, be.unary(s, Unary.SIGN, x));
            case SIGN -> be.affine(s, dy, 0.0, 0.0);
            case SIGMOID -> be.mul(s, dy, be.mul(s, y, be.affine(s, y, -1.0, 1.0)));
            case TANH -> be.mul(s, dy, be.affine(s, be.unary(s, Unary.SQUARE, y), -1.0, 1.0));
            case SIN -> be.mul(s, dy, be.unary(s, Unary.COS, x));
            case COS -> be.mul(s, be.affine(s, dy, -1.0, 0.0), be.unary(s, Unary.SIN, x));
        };
        bp.accumulate(x, dx);
    }
}
