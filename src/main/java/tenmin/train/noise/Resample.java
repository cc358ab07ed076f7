package tenmin.train.noise;

/**
 * Bilinear resampling of (planes, H, W) float tensors as PyTorch's {@code interpolate(mode="bilinear",
 * align_corners=False)} (what {@code nn.Upsample(size, mode="bilinear")} does): source coordinate
 * {@code (dst + 0.5)·in/out − 0.5}, clamped at 0; neighbours {@code i0 = ⌊src⌋}, {@code i1 = min(i0+1, in−1)}.
 */
public final class Resample {
    private Resample() {
    }

    /** {@code out += weight · bilinear(src)} for every plane. */
    public static void bilinearAddInto(float[] out, float[] src, int planes, int inH, int inW, int outH, int outW,
                                       float weight) {
        int[] y0 = new int[outH];
        int[] y1 = new int[outH];
        float[] ly = new float[outH];
        coordinates(inH, outH, y0, y1, ly);
        int[] x0 = new int[outW];
        int[] x1 = new int[outW];
        float[] lx = new float[outW];
        coordinates(inW, outW, x0, x1, lx);
        for (int p = 0; p < planes; p++) {
            int sBase = p * inH * inW;
            int oBase = p * outH * outW;
            for (int y = 0; y < outH; y++) {
                int r0 = sBase + y0[y] * inW;
                int r1 = sBase + y1[y] * inW;
                float wy = ly[y];
                for (int x = 0; x < outW; x++) {
                    float wx = lx[x];
                    float top = src[r0 + x0[x]] * (1 - wx) + src[r0 + x1[x]] * wx;
                    float bottom = src[r1 + x0[x]] * (1 - wx) + src[r1 + x1[x]] * wx;
                    out[oBase + y * outW + x] += weight * (top * (1 - wy) + bottom * wy);
                }
            }
        }
    }

    /** Per output index: the two source indices and the weight of the second. */
    static void coordinates(int in, int out, int[] i0, int[] i1, float[] lambda) {
        double scale = (double) in / out;
        for (int d = 0; d < out; d++) {
            double src = Math.max(0.0, (d + 0.5) * scale - 0.5);
            int lo = Math.min((int) Math.floor(src), in - 1);
            i0[d] = lo;
            i1[d] = Math.min(lo + 1, in - 1);
            lambda[d] = (float) (src - lo);
        }
    }
}
