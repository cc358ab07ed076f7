package tenmin.train.optim;

import java.util.Arrays;

/**
 * One trainable fp32 tensor on the host: its values, its gradient buffer and whether backward reached it.
 *
 * <p>{@code hasGrad} models PyTorch's {@code .grad is None}: a tensor that no backward pass touched since
 * the last {@link #zeroGrad()} is skipped entirely by the optimizers (no update, no weight decay, no state
 * step) and by gradient clipping (fixtures README Q4). The gradient accumulates ({@code +=}) over the
 * micro-batches of one optimizer step.
 */
public final class Param {
    private final String name;
    private final long[] shape;
    private final float[] value;
    private final float[] grad;
    private boolean hasGrad;

    /** Wraps {@code value} (not copied: the optimizer updates it in place). */
    public Param(String name, long[] shape, float[] value) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != value.length) {
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " has " + n
                    + " elements, values " + value.length);
        }
        this.name = name;
        this.shape = shape.clone();
        this.value = value;
        this.grad = new float[value.length];
    }

    public String name() {
        return name;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int numel() {
        return value.length;
    }

    /** Size of dim 0 ("rows": output features / out-channels); 1 for a scalar. */
    public int rows() {
        return shape.length == 0 ? 1 : (int) shape[0];
    }

    /** The live values (updated in place by the optimizer). */
    public float[] value() {
        return value;
    }

    /**
     * The live gradient buffer; call {@link #markGrad()} after writing all of it. Its contents are meaningful only
     * while {@link #hasGrad()}: {@link #zeroGrad()} does not clear it.
     */
    public float[] grad() {
        return grad;
    }

    public boolean hasGrad() {
        return hasGrad;
    }

    /** Records that backward wrote (accumulated) into {@link #grad()}. */
    public void markGrad() {
        hasGrad = true;
    }

    /** Adds {@code g} into the gradient (the first after {@link #zeroGrad()} is copied) and marks it present. */
    public void accumulateGrad(float[] g) {
        if (g.length != grad.length) {
            throw new IllegalArgumentException(name + ": gradient has " + g.length + " values, expected " + grad.length);
        }
        if (!hasGrad) {
            System.arraycopy(g, 0, grad, 0, g.length);
        } else {
            for (int i = 0; i < g.length; i++) {
                grad[i] += g[i];
            }
        }
        hasGrad = true;
    }

    /**
     * Clears the gradient to "None" (PyTorch {@code zero_grad(set_to_none=True)}): the buffer is left as it is (the
     * recipe's 120 million values would take a pass over 480 MB) and is overwritten by the next gradient.
     */
    public void zeroGrad() {
        hasGrad = false;
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape);
    }
}
