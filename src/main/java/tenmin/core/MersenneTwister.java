package tenmin.core;

/**
 * The 32-bit Mersenne Twister MT19937 with the reference {@code init_genrand} seeding: the core of numpy's
 * legacy {@code RandomState} and of PyTorch's CPU generator, which build their distributions on it in
 * different ways ({@code tenmin.lora.NumpyRandom}, {@code tenmin.sample.TorchGenerator}).
 *
 * <p>Not thread-safe.
 */
public final class MersenneTwister {
    private static final int N = 624;
    private static final int M = 397;

    private final int[] mt = new int[N];
    private int index;

    /** {@code init_genrand(seed)}: only the low 32 bits of {@code seed} are used. */
    public MersenneTwister(long seed) {
        mt[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            mt[j] = 1812433253 * (mt[j - 1] ^ (mt[j - 1] >>> 30)) + j;
        }
        index = N;
    }

    /** The next 32-bit output, unsigned, in a long. */
    public long nextUInt32() {
        if (index >= N) {
            twist();
        }
        int y = mt[index++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xFFFFFFFFL;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
            int next = mt[(i + M) % N] ^ (y >>> 1);
            if ((y & 1) != 0) {
                next ^= 0x9908b0df;
            }
            mt[i] = next;
        }
        index = 0;
    }
}
