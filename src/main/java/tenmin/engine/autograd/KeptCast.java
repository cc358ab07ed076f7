package tenmin.engine.autograd;

import tenmin.engine.api.DType;
import tenmin.engine.api.Tensor;

/**
 * A parameter's cast to another dtype, made at its first use and reused while the parameter does not change (its
 * owner calls {@link #drop} whenever it writes it): the bf16 copies of a LoCon over an optimizer window, a frozen
 * group norm's fp32 gamma and beta. Each use is recorded as a cast, so a gradient still reaches the parameter.
 */
public final class KeptCast {
    private Tensor copy;

    /** {@code p} in {@code dtype} for {@code f}: the kept copy, made (or made again for another dtype) when missing. */
    public Tensor of(Functional f, Tensor p, DType dtype) {
        if (p.dtype() == dtype) {
            return p;
        }
        if (copy == null || copy.isClosed() || copy.dtype() != dtype) {
            drop();
            copy = p.backend().cast(p.scope(), p, dtype).named(p.name() + "." + dtype);
        }
        return CastOp.reuse(f, p, copy);
    }

    /** Frees the copy (the parameter changed); the next use makes a new one. */
    public void drop() {
        if (copy != null && !copy.isClosed()) {
            copy.close();
        }
        copy = null;
    }
}
