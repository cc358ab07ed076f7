package tenmin.models.vae;

import java.util.function.Function;
import java.util.function.UnaryOperator;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * Memory-bounded inference helpers of the VAE, which runs at image resolution (a 1024² image makes
 * 128-channel feature maps of 512 MB each in fp32):
 * <ul>
 *   <li>{@link #then}: apply a step and free its input at once (inference keeps no activations);</li>
 *   <li>{@link #scoped}: run a block in a child scope so its temporaries die with it.</li>
 * </ul>
 * Large convolutions need nothing here: the CPU backend works in bands of output rows itself, so its
 * im2col buffer stays bounded whatever the image size (docs/ENGINE.md).
 */
final class VaeOps {
    private VaeOps() {
    }

    /** {@code op(t)}, then closes {@code t} (unless {@code op} returned it). */
    static Tensor then(Tensor t, UnaryOperator<Tensor> op) {
        Tensor r = op.apply(t);
        if (r != t) {
            t.close();
        }
        return r;
    }

    /** Runs {@code block} in a child scope of {@code f}'s and moves only its result out. */
    static Tensor scoped(Functional f, String name, Function<Functional, Tensor> block) {
        try (Scope s = f.scope().child(name)) {
            Tensor out = block.apply(Functional.inference(s));
            return out.scope() == s ? s.keep(out) : out;
        }
    }
}
