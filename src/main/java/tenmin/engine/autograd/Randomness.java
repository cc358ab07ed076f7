package tenmin.engine.autograd;

import tenmin.engine.api.Generator;

/**
 * The random draws of one stochastic forward (dropout while training): a key and a counter, each draw taking the next
 * counter value, so the same key always gives the same draws in the same order. A {@link Functional} that carries one
 * ({@link Functional#withRandomness}) is a training forward; without one a forward is deterministic (inference,
 * sampling, evaluation), and layers that would draw skip their randomness.
 *
 * <p>Gradient checkpointing keeps a {@link #copy} taken where a block starts, and its recomputation in the backward
 * draws from that copy: the recomputed block sees the forward's masks, wherever and whenever its backward runs (the
 * text encoders' backward may be issued after the next micro-batch's forward). The outer forward's sequence of draws
 * is the same with and without checkpointing. Not thread-safe.
 */
public final class Randomness {
    private final long key;
    private long count;

    private Randomness(long key, long count) {
        this.key = key;
        this.count = count;
    }

    /** Draw stream {@code stream} of {@code key} (e.g. a micro-batch's key; the U-Net and the text encoders apart). */
    public static Randomness of(long key, long stream) {
        return new Randomness(mix(key ^ mix(stream + 0x632BE59BD9B4E019L)), 0L);
    }

    /** The same key at the same counter: the draws this one will make next. */
    public Randomness copy() {
        return new Randomness(key, count);
    }

    /** A generator of its own for the next draw (a backend's {@code randUniform} of any size). */
    public Generator next() {
        return new Generator(mix(key + 0x9E3779B97F4A7C15L * ++count));
    }

    /** The next draw as one uniform value in [0, 1) with 53 random bits. */
    public double nextUniform() {
        return (mix(mix(key + 0x9E3779B97F4A7C15L * ++count) ^ 0x5DEECE66DL) >>> 11) * 0x1.0p-53;
    }

    /** Draws made so far. */
    public long count() {
        return count;
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
