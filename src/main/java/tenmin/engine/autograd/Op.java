package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/**
 * One recorded operation of the tape: the inputs it produces gradients for, its outputs, and the
 * backward that turns output gradients into input gradients.
 *
 * <p>Subclasses keep what the backward needs as fields (their class comment lists it) and are
 * recorded by their static {@code forward} through {@link Functional#record}.
 */
abstract class Op {
    /** For ops whose backward reads no tensor's values. */
    static final Tensor[] NONE = new Tensor[0];

    /** Short name for traces and errors, e.g. {@code conv2d}. */
    abstract String name();

    /**
     * The tensors whose values {@link #backward} reads (not those it only needs the shape or identity of): the
     * tape keeps a {@linkplain Functional#release released} tensor alive until every op reading it has run its
     * backward. Null entries are allowed.
     */
    abstract Tensor[] reads();

    /**
     * Reads the gradients of this op's outputs from {@code bp} and hands the gradient of each input
     * that needs one to {@link Backprop#accumulate}. Allocate only in {@link Backprop#scratch()}.
     */
    abstract void backward(Backprop bp);
}
