package tenmin.train.data;

/**
 * Separable 1-D resampling weights: area averaging (OpenCV {@code INTER_AREA} for shrinking: each output
 * pixel is the mean of the input covered by its footprint, partial pixels weighted by their coverage) and
 * Lanczos-3 (PIL {@code LANCZOS}: support 3·max(1, scale), window centred at (d+0.5)·scale, weights
 * normalised to 1).
 */
final class Resampler {
    private Resampler() {
    }

    /** For each output index: first input index and weights. */
    record Weights(int[] start, float[][] w) {
    }

    static Weights area(int in, int out) {
        double scale = (double) in / out;
        int[] start = new int[out];
        float[][] w = new float[out][];
        for (int d = 0; d < out; d++) {
            double a = d * scale;
            double b = Math.min(in, (d + 1) * scale);
            int s = (int) Math.floor(a);
            int e = (int) Math.ceil(b);
            float[] ws = new float[e - s];
            for (int i = s; i < e; i++) {
                double cover = Math.min(b, i + 1) - Math.max(a, i);
                ws[i - s] = (float) (cover / (b - a));
            }
            start[d] = s;
            w[d] = ws;
        }
        return new Weights(start, w);
    }

    static Weights lanczos(int in, int out) {
        double scale = (double) in / out;
        double filterScale = Math.max(1.0, scale);
        double support = 3.0 * filterScale;
        int[] start = new int[out];
        float[][] w = new float[out][];
        for (int d = 0; d < out; d++) {
            double center = (d + 0.5) * scale;
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), in);
            double[] ws = new double[Math.max(0, xmax - xmin)];
            double total = 0;
            for (int x = 0; x < ws.length; x++) {
                ws[x] = lanczos3((x + xmin - center + 0.5) / filterScale);
                total += ws[x];
            }
            float[] f = new float[ws.length];
            for (int x = 0; x < ws.length; x++) {
                f[x] = (float) (total != 0 ? ws[x] / total : 0);
            }
            start[d] = xmin;
            w[d] = f;
        }
        return new Weights(start, w);
    }

    private static double lanczos3(double x) {
        if (x == 0) {
            return 1;
        }
        if (x <= -3 || x >= 3) {
            return 0;
        }
        double px = Math.PI * x;
        return 3 * Math.sin(px) * Math.sin(px / 3) / (px * px);
    }

    /** Resamples each row of an (h, inW) plane to (h, outW). */
    static float[] applyRows(float[] src, int inW, int h, Weights wx) {
        int outW = wx.start().length;
        float[] out = new float[h * outW];
        for (int y = 0; y < h; y++) {
            int row = y * inW;
            for (int d = 0; d < outW; d++) {
                float[] ws = wx.w()[d];
                int s = wx.start()[d];
                double acc = 0;
                for (int k = 0; k < ws.length; k++) {
                    acc += ws[k] * src[row + s + k];
                }
                out[y * outW + d] = (float) acc;
            }
        }
        return out;
    }

    /** Resamples each column of a (inH, w) plane to (outH, w). */
    static float[] applyColumns(float[] src, int w, int inH, Weights wy) {
        int outH = wy.start().length;
        float[] out = new float[outH * w];
        for (int d = 0; d < outH; d++) {
            float[] ws = wy.w()[d];
            int s = wy.start()[d];
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int k = 0; k < ws.length; k++) {
                    acc += ws[k] * src[(s + k) * w + x];
                }
                out[d * w + x] = (float) acc;
            }
        }
        return out;
    }
}
