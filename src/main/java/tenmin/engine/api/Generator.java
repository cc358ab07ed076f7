package tenmin.engine.api;

/**
 * An explicit, seeded source of random numbers for {@link Backend#randn} and {@link Backend#randUniform}.
 *
 * <p>Counter based: a request for {@code n} values takes the counter range {@code [offset, offset+n)}
 * and advances the offset, so a run is reproducible from the seed and the sequence of requests, and
 * backends can draw in parallel. Each backend documents how it maps {@code (seed, counter)} to
 * values; different backends need not produce the same stream (tests that compare backends upload
 * host data instead). Not thread-safe: one generator per consumer.
 */
public final class Generator {
    private final long seed;
    private long offset;

    /** A generator at counter 0. */
    public Generator(long seed) {
        this(seed, 0);
    }

    /** A generator resumed at {@code offset} (from saved training state). */
    public Generator(long seed, long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("negative generator offset " + offset);
        }
        this.seed = seed;
        this.offset = offset;
    }

    public long seed() {
        return seed;
    }

    /** The next unused counter value (saved with training state). */
    public long offset() {
        return offset;
    }

    /** Reserves {@code count} counter values and returns the first; backends call this once per request. */
    public long reserve(long count) {
        if (count < 0) {
            throw new IllegalArgumentException("negative count " + count);
        }
        long first = offset;
        offset += count;
        return first;
    }

    @Override
    public String toString() {
        return "Generator(seed=" + seed + ", offset=" + offset + ")";
    }
}
