package tenmin.sample;

import tenmin.core.MersenneTwister;

/**
 * A Gaussian source that draws the same numbers as PyTorch's CPU generator: {@code torch.manual_seed(seed)}
 * (or {@code torch.Generator().manual_seed(seed)}) followed by {@code torch.randn(n)} calls. So a seed gives
 * the initial latents ComfyUI makes for it (it draws them with {@code torch.randn} on the CPU), and
 * ancestral samplers consume the stream the way diffusers does with a CPU generator.
 *
 * <p>The algorithm is PyTorch's (ATen {@code CPUGeneratorImpl}, {@code normal_fill}, {@code
 * normal_distribution<double>}): a standard 32-bit Mersenne Twister seeded with the low 32 bits of the seed;
 * uniforms {@code (r & 0xFFFFFF)·2⁻²⁴}; for 16 or more values all uniforms are drawn first and each block of
 * 16 is turned into normals by Box–Muller (first 8 = radius·cos, last 8 = radius·sin, with
 * {@code u1 = 1 − u}), a ragged tail redraws and transforms the last 16; fewer than 16 values use the
 * double-precision Box–Muller with a cached second value. Values agree with PyTorch to float rounding
 * (its vectorised kernels round log/sin/cos slightly differently; seen ≤ 2e-6 absolute).
 *
 * <p>Not thread-safe: one generator per image.
 */
public final class TorchGenerator implements GaussianSource {
    private final MersenneTwister mt;
    private boolean hasCachedNormal;
    private double cachedNormal;

    /** {@code torch.manual_seed(seed)}: only the low 32 bits matter, as in PyTorch. */
    public TorchGenerator(long seed) {
        mt = new MersenneTwister(seed);
    }

    /** The next 32-bit output of the Mersenne Twister (unsigned, in a long). */
    long nextUInt32() {
        return mt.nextUInt32();
    }

    /** {@code uniform_real_distribution<float>(0, 1)}: 24 random bits. */
    private float uniformFloat() {
        return (nextUInt32() & 0xFFFFFF) * 0x1p-24f;
    }

    /** {@code uniform_real_distribution<double>(0, 1)}: 53 bits of a 64-bit draw (first 32 bits high). */
    private double uniformDouble() {
        long hi = nextUInt32();
        long lo = nextUInt32();
        long bits = (hi << 32) | lo;
        return (bits & ((1L << 53) - 1)) * 0x1p-53;
    }

    /** {@code torch.randn(out.length)} into {@code out}. */
    @Override
    public void fill(float[] out) {
        int size = out.length;
        if (size >= 16) {
            for (int i = 0; i < size; i++) {
                out[i] = uniformFloat();
            }
            for (int i = 0; i < size - 15; i += 16) {
                boxMuller16(out, i);
            }
            if (size % 16 != 0) {
                int start = size - 16;
                for (int i = 0; i < 16; i++) {
                    out[start + i] = uniformFloat();
                }
                boxMuller16(out, start);
            }
        } else {
            for (int i = 0; i < size; i++) {
                out[i] = (float) normalDouble();
            }
        }
    }

    /** ATen {@code normal_fill_16}: 16 uniforms at {@code off} become 16 normals (float arithmetic). */
    private static void boxMuller16(float[] data, int off) {
        for (int j = 0; j < 8; j++) {
            float u1 = 1f - data[off + j];
            float u2 = data[off + j + 8];
            float radius = (float) Math.sqrt(-2f * (float) Math.log(u1));
            float theta = (float) (2.0f * Math.PI * u2);
            data[off + j] = radius * (float) Math.cos(theta);
            data[off + j + 8] = radius * (float) Math.sin(theta);
        }
    }

    /** ATen {@code normal_distribution<double>} with the generator's cached second sample. */
    private double normalDouble() {
        if (hasCachedNormal) {
            hasCachedNormal = false;
            return cachedNormal;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = Math.sqrt(-2.0 * Math.log(1.0 - u2));
        double theta = 2.0 * Math.PI * u1;
        cachedNormal = r * Math.sin(theta);
        hasCachedNormal = true;
        return r * Math.cos(theta);
    }
}
