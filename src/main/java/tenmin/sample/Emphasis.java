package tenmin.sample;

/**
 * How token multipliers act on a text encoder's hidden states (A1111 {@code sd_emphasis}), applied to one
 * chunk's output after the encoder ran.
 */
public enum Emphasis {
    /**
     * A1111's default "Original": multiply each token's hidden state by its multiplier, then scale the whole
     * chunk so that its mean equals the mean before weighting ({@code z *= m; z *= old_mean / new_mean}).
     * kohya's sample pipeline does the same, with the mean taken over all chunks together.
     */
    ORIGINAL,
    /** "No norm": multiply only. */
    NO_NORM;

    /**
     * Re-weights {@code hidden} in place.
     *
     * @param hidden (T, D) hidden states of one chunk, row-major
     * @param multipliers (T) one per token ({@link PromptChunks.Chunk#multipliers()})
     * @param dim D
     */
    public void apply(float[] hidden, float[] multipliers, int dim) {
        int tokens = multipliers.length;
        if (hidden.length != (long) tokens * dim) {
            throw new IllegalArgumentException("hidden has " + hidden.length + " values, expected " + tokens + " x " + dim);
        }
        double before = this == ORIGINAL ? mean(hidden) : 0;
        for (int t = 0; t < tokens; t++) {
            float m = multipliers[t];
            if (m == 1f) {
                continue;
            }
            for (int d = t * dim, end = d + dim; d < end; d++) {
                hidden[d] *= m;
            }
        }
        if (this == ORIGINAL) {
            float scale = (float) (before / mean(hidden));
            for (int i = 0; i < hidden.length; i++) {
                hidden[i] *= scale;
            }
        }
    }

    private static double mean(float[] x) {
        double s = 0;
        for (float v : x) {
            s += v;
        }
        return s / x.length;
    }
}
