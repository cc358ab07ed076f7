package tenmin.engine.autograd;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * What one op's backward sees: its output gradients, which inputs need gradients, a scratch scope
 * for temporaries, and {@link #accumulate} to hand input gradients back to the tape.
 */
final class Backprop {
    private final Tape tape;
    private final Tensor[] outputs;
    private final Scope scratch;

    Backprop(Tape tape, Tensor[] outputs, Scope scratch) {
        this.tape = tape;
        this.outputs = outputs;
        this.scratch = scratch;
    }

    Backend backend() {
        return scratch.backend();
    }

    /** Scope for every tensor the backward allocates; closed right after it. */
    Scope scratch() {
        return scratch;
    }

    Tape tape() {
        return tape;
    }

    /** Gradient of output {@code i}, or null when nothing downstream produced one. */
    Tensor grad(int i) {
        return tape.gradOf(outputs[i]);
    }

    /** Gradient of output {@code i}, or zeros of its shape. */
    Tensor gradOrZeros(int i) {
        Tensor g = grad(i);
        return g != null ? g : scratch.zeros(outputs[i].shape(), outputs[i].dtype());
    }

    /** True when {@code input} carries gradient (a null input never does). */
    boolean needs(Tensor input) {
        return tape.tracks(input);
    }

    /**
     * Adds {@code g}, the gradient of {@code input}, to the result: into {@code input.grad()} for a
     * leaf that requires grad ({@code +=}), into the tape's map for an activation. No-op when the input
     * needs no gradient or {@code g} is null.
     */
    void accumulate(Tensor input, Tensor g) {
        if (g == null || !needs(input)) {
            return;
        }
        if (!g.shape().equals(input.shape()) || g.dtype() != input.dtype()) {
            throw new IllegalStateException("backward produced gradient " + g.describe() + " for " + input.describe()
                    + " (shape or dtype differ)");
        }
        if (input.requiresGrad()) {
            tape.addLeafGrad(input, g, scratch);
        } else {
            tape.addGrad(input, g, scratch);
        }
    }

    /**
     * {@link #accumulate} of a gradient {@code g} in another floating dtype than {@code input}: a parameter's gradient
     * takes it as it is ({@link tenmin.engine.api.Backend#axpyInto} converts), an activation's is converted first.
     * The cast's backward: an fp32 LoCon parameter's bf16 gradient is added into its fp32 gradient in one op, not two.
     */
    void accumulateConverting(Tensor input, Tensor g) {
        if (g == null || !needs(input)) {
            return;
        }
        if (input.requiresGrad() && g.shape().equals(input.shape())) {
            tape.addLeafGrad(input, g, scratch);
        } else {
            accumulate(input, g.dtype() == input.dtype() ? g : backend().cast(scratch, g, input.dtype()));
        }
    }

    /** Which of a layer's gradients are needed (ATen's output_mask). */
    OutputMask mask(Tensor x, Tensor weight, Tensor bias) {
        return new OutputMask(needs(x), needs(weight), needs(bias));
    }

    /** Hands the gradients of a layer's input, weight and bias to {@link #accumulate}. */
    void accumulate(LayerGrads g, Tensor x, Tensor weight, Tensor bias) {
        accumulate(x, g.dx());
        accumulate(weight, g.dWeight());
        accumulate(bias, g.dBias());
    }

    /**
     * Reduces a gradient of a broadcast result to the shape of an operand: sums over leading
     * dimensions the operand lacks and over dimensions where it has size 1.
     */
    Tensor sumToShape(Tensor g, Shape shape) {
        if (g.shape().equals(shape)) {
            return g;
        }
        int lead = g.rank() - shape.rank();
        int count = 0;
        int[] dims = new int[g.rank()];
        for (int i = 0; i < g.rank(); i++) {
            if (i < lead || (shape.dim(i - lead) == 1 && g.dim(i) != 1)) {
                dims[count++] = i;
            }
        }
        Tensor summed = backend().sum(scratch, g, java.util.Arrays.copyOf(dims, count), true);
        return backend().reshape(scratch, summed, shape);
    }
}
