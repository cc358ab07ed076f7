package tenmin.train.log;

import java.util.Arrays;

/**
 * kohya's {@code LossRecorder}: the running average logged as {@code loss/average}. During epoch 0 it is
 * the mean of all micro-batch losses so far; in later epochs the loss at the same micro-batch index
 * replaces the old one, so it is a moving average over one epoch's worth of micro-batches.
 */
public final class LossRecorder {
    private float[] losses;
    private int size;
    private double total;

    public LossRecorder() {
        this(new float[0], 0);
    }

    /** Restores a recorder from its saved window and total (training state). */
    public LossRecorder(float[] window, double total) {
        this.losses = window.clone();
        this.size = window.length;
        this.total = total;
    }

    /** Records the loss of micro-batch {@code index} of {@code epoch}. */
    public void add(int epoch, int index, float loss) {
        if (epoch == 0) {
            if (size == losses.length) {
                losses = Arrays.copyOf(losses, Math.max(16, size * 2));
            }
            losses[size++] = loss;
        } else {
            if (index >= size) {
                throw new IllegalArgumentException("micro-batch " + index + " beyond the " + size + " of epoch 0");
            }
            total -= losses[index];
            losses[index] = loss;
        }
        total += loss;
    }

    /** The moving average (NaN before the first loss). */
    public double average() {
        return size == 0 ? Double.NaN : total / size;
    }

    /** The window, for the training state. */
    public float[] window() {
        return Arrays.copyOf(losses, size);
    }

    /** The running total, for the training state. */
    public double total() {
        return total;
    }
}
