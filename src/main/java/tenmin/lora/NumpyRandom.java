package tenmin.lora;

/**
 * numpy's legacy global generator ({@code np.random.seed(s)}, {@code np.random.uniform}): MT19937 seeded
 * with {@code init_genrand(s)}, doubles from two 32-bit outputs ({@code (a>>5)·2^26 + (b>>6)) / 2^53}).
 * Inspire-Pack draws its R/U block weights from it, so the same seed gives the same weights.
 *
 * <p>Not thread-safe; one instance per resolution.
 */
public final class NumpyRandom {
    private static final int N = 624;
    private static final int M = 397;
    private final int[] mt = new int[N];
    private int index;

    /** {@code np.random.seed(seed)} for {@code 0 <= seed < 2^32}. */
    public NumpyRandom(long seed) {
        if (seed < 0 || seed > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("seed must be in [0, 2^32): " + seed);
        }
        mt[0] = (int) seed;
        for (int i = 1; i < N; i++) {
            mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
        }
        index = N;
    }

    /** The next 32-bit output. */
    public int nextInt32() {
        if (index >= N) {
            twist();
        }
        int y = mt[index++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (mt[i] & 0x8000_0000) | (mt[(i + 1) % N] & 0x7fff_ffff);
            int next = mt[(i + M) % N] ^ (y >>> 1);
            mt[i] = (y & 1) != 0 ? next ^ 0x9908b0df : next;
        }
        index = 0;
    }

    /** {@code random_sample()}: uniform in [0, 1) with 53 random bits. */
    public double nextDouble() {
        long a = (nextInt32() & 0xFFFF_FFFFL) >>> 5;
        long b = (nextInt32() & 0xFFFF_FFFFL) >>> 6;
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
