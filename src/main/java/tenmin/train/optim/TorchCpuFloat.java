package tenmin.train.optim;

/**
 * float32 arithmetic in the order PyTorch's CPU kernels use, so that optimizers fed the same gradients
 * reproduce the reference's parameters bit for bit (fixture {@code clybw.safetensors}, tolerance 1e-9 on
 * O(1) values — below one float32 ulp).
 *
 * <p>What the fixture pins down (each variant was tested against it; alternatives miss by 1–2 ulp):
 * <ul>
 * <li>{@code sum} over a contiguous row (ATen {@code cascade_sum}, float accumulator, AVX2 vectors of 8):
 *     rows shorter than 8 use four interleaved scalar accumulators (ilp 4), tail into the first, then
 *     {@code ((a0+a1)+a2)+a3}; longer rows accumulate 8-lane vectors in four interleaved accumulators with
 *     ATen's 4-level cascade, then the scalar tail, then the 8 lanes in order.
 * <li>{@code std} accumulates in double (ATen {@code WelfordOps<float, double>}) and rounds once.
 * <li>{@code a.add_(b, alpha=c)} and {@code a.addcmul_(b, b, value=c)} compile to a fused multiply-add:
 *     {@code fma(b, c, a)} and {@code fma(c*b, b, a)}.
 * </ul>
 */
public final class TorchCpuFloat {
    /** float lanes in one AVX2 vector (ATen's default CPU capability). */
    static final int LANES = 8;
    private static final int ILP = 4;
    private static final int LEVELS = 4;

    private TorchCpuFloat() {
    }

    /** {@code torch.sum} of {@code a[off .. off+n)} as one contiguous row, float32. */
    public static float sum(float[] a, int off, int n) {
        if (n < LANES) {
            return scalarRowSum(a, off, n);
        }
        int vecCount = n / LANES;
        float[] lanes = vectorRowSum(a, off, vecCount);
        float fin = 0f;
        for (int k = vecCount * LANES; k < n; k++) {
            fin += a[off + k];
        }
        for (int l = 0; l < LANES; l++) {
            fin += lanes[l];
        }
        return fin;
    }

    /** {@code row.mean()} = sum / count in float32. */
    public static float mean(float[] a, int off, int n) {
        return sum(a, off, n) / (float) n;
    }

    /** Unbiased standard deviation accumulated in double (Welford), rounded to float once. */
    public static float stdUnbiased(float[] a, int off, int n) {
        double mean = 0;
        double m2 = 0;
        for (int i = 0; i < n; i++) {
            double x = a[off + i];
            double delta = x - mean;
            mean += delta / (i + 1);
            m2 += delta * (x - mean);
        }
        return (float) Math.sqrt(n > 1 ? m2 / (n - 1) : Double.NaN);
    }

    /** ATen {@code row_sum} with a scalar accumulator: four interleaved sums (ilp 4), cascade, combine. */
    private static float scalarRowSum(float[] a, int off, int n) {
        int groups = n / ILP;
        float[][] acc = cascade(a, off, groups, 1);
        float[] partial = new float[ILP];
        for (int k = 0; k < ILP; k++) {
            partial[k] = acc[k][0];
        }
        for (int i = groups * ILP; i < n; i++) {
            partial[0] += a[off + i];
        }
        for (int k = 1; k < ILP; k++) {
            partial[0] += partial[k];
        }
        return partial[0];
    }

    /** ATen {@code row_sum} over {@code vecCount} vectors of 8 lanes; returns the 8 lane sums. */
    private static float[] vectorRowSum(float[] a, int off, int vecCount) {
        int groups = vecCount / ILP;
        float[][] acc = cascade(a, off, groups, LANES);
        float[] p0 = acc[0];
        for (int v = groups * ILP; v < vecCount; v++) {
            int base = off + v * LANES;
            for (int l = 0; l < LANES; l++) {
                p0[l] += a[base + l];
            }
        }
        for (int k = 1; k < ILP; k++) {
            for (int l = 0; l < LANES; l++) {
                p0[l] += acc[k][l];
            }
        }
        return p0;
    }

    /**
     * ATen {@code multi_row_sum<acc, 4>}: {@code groups} rows of {@code ILP} interleaved accumulators, each of
     * {@code width} lanes, summed with the 4-level cascade (level step {@code 2^max(4, ceil(log2 groups)/4)}).
     * Returns {@code acc[k][lane]} for k in 0..3.
     */
    private static float[][] cascade(float[] a, int off, int groups, int width) {
        int levelPower = Math.max(4, ceilLog2(groups) / LEVELS);
        int levelStep = 1 << levelPower;
        int levelMask = levelStep - 1;
        float[][][] acc = new float[LEVELS][ILP][width];
        int i = 0;
        while (i + levelStep <= groups) {
            for (int j = 0; j < levelStep; j++) {
                addGroup(a, off, i + j, width, acc[0]);
            }
            i += levelStep;
            for (int lev = 1; lev < LEVELS; lev++) {
                for (int k = 0; k < ILP; k++) {
                    for (int l = 0; l < width; l++) {
                        acc[lev][k][l] += acc[lev - 1][k][l];
                        acc[lev - 1][k][l] = 0f;
                    }
                }
                long mask = (long) levelMask << (lev * levelPower);
                if ((i & mask) != 0) {
                    break;
                }
            }
        }
        for (; i < groups; i++) {
            addGroup(a, off, i, width, acc[0]);
        }
        for (int lev = 1; lev < LEVELS; lev++) {
            for (int k = 0; k < ILP; k++) {
                for (int l = 0; l < width; l++) {
                    acc[0][k][l] += acc[lev][k][l];
                }
            }
        }
        return acc[0];
    }

    private static void addGroup(float[] a, int off, int group, int width, float[][] acc) {
        int base = off + group * ILP * width;
        for (int k = 0; k < ILP; k++) {
            int b = base + k * width;
            for (int l = 0; l < width; l++) {
                acc[k][l] += a[b + l];
            }
        }
    }

    private static int ceilLog2(int x) {
        return x <= 1 ? 0 : 32 - Integer.numberOfLeadingZeros(x - 1);
    }
}
