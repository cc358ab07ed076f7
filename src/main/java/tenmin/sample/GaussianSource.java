package tenmin.sample;

/**
 * A seeded source of standard normal numbers: initial latents and ancestral noise come only from here
 * (no hidden global generator). Not thread-safe; one per image.
 */
public interface GaussianSource {
    /** Fills {@code out} with independent N(0, 1) draws. */
    void fill(float[] out);

    /** {@code n} new N(0, 1) draws. */
    default float[] next(int n) {
        float[] out = new float[n];
        fill(out);
        return out;
    }
}
