package tenmin.engine.backend.cpu;

/**
 * Counter-based random numbers for the {@code cpu} backend: value number {@code c} of a generator
 * with seed {@code s} depends only on (s, c), through the SplitMix64 finaliser (Steele, Lea &amp; Flood
 * 2014) applied to {@code s·φ + c}; so draws are reproducible and independent of threading.
 * Normals use Box–Muller on the two 32-bit halves of one 64-bit value.
 */
final class CounterRandom {
    private static final long GOLDEN = 0x9E37_79B9_7F4A_7C15L;

    private CounterRandom() {
    }

    static long bits(long seed, long counter) {
        long z = seed * GOLDEN + counter * 0xD1B5_4A32_D192_ED03L + GOLDEN;
        z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1) from 24 random bits (exactly representable as a float). */
    static double uniform(long seed, long counter) {
        return (bits(seed, counter) >>> 40) * 0x1.0p-24;
    }

    /** Standard normal. */
    static double normal(long seed, long counter) {
        long r = bits(seed, counter);
        double u1 = ((r >>> 40) + 1) * 0x1.0p-24;           // (0, 1]
        double u2 = ((r >>> 8) & 0xFF_FFFFL) * 0x1.0p-24;   // [0, 1)
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
}
