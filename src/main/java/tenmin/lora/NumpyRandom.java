package tenmin.lora;

import tenmin.core.MersenneTwister;

/**
 * numpy's legacy global generator ({@code np.random.seed(s)}, {@code np.random.uniform}): MT19937 seeded
 * with {@code init_genrand(s)}, doubles from two 32-bit outputs ({@code (a>>5)·2^26 + (b>>6)) / 2^53}).
 * Inspire-Pack draws its R/U block weights from it, so the same seed gives the same weights.
 *
 * <p>Not thread-safe; one instance per resolution.
 */
public final class NumpyRandom {
    private final MersenneTwister mt;

    /** {@code np.random.seed(seed)} for {@code 0 <= seed < 2^32}. */
    public NumpyRandom(long seed) {
        if (seed < 0 || seed > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("seed must be in [0, 2^32): " + seed);
        }
        mt = new MersenneTwister(seed);
    }

    /** {@code random_sample()}: uniform in [0, 1) with 53 random bits. */
    public double nextDouble() {
        long a = mt.nextUInt32() >>> 5;
        long b = mt.nextUInt32() >>> 6;
        return (a * 67108864.0 + b) / 9007199254740992.0;
    }

    /** {@code uniform(low, high)} = {@code low + (high - low) · random_sample()}. */
    public double uniform(double low, double high) {
        return low + (high - low) * nextDouble();
    }

    /** {@code round(np.float64(x), digits)}: numpy multiplies by 10^digits, rounds half to even, divides. */
    public static double round(double x, int digits) {
        double f = Math.pow(10, digits);
        return Math.rint(x * f) / f;
    }
}
