package tenmin.engine.autograd;

/**
 * One recorded operation of the tape: the inputs it produces gradients for, its outputs, and the
 * backward that turns output gradients into input gradients.
 *
 * <p>Subclasses keep what the backward needs as fields (their class comment lists it) and are
 * recorded by their static {@code forward} through {@link Functional#record}.
 */
abstract class Op {
    /** Short name for traces and errors, e.g. {@code conv2d}. */
    abstract String name();

    /**
     * Reads the gradients of this op's outputs from {@code bp} and hands the gradient of each input
     * that needs one to {@link Backprop#accumulate}. Allocate only in {@link Backprop#scratch()}.
     */
    abstract void backward(Backprop bp);
}
