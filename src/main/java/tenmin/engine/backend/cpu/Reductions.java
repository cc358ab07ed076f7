package tenmin.engine.backend.cpu;

import tenmin.engine.api.Shape;

/**
 * Reductions and lookups: sum/mean over dimensions, mean-squared error, embedding lookup and its
 * scatter-add backward, sinusoidal embeddings. Sums run in double, in index order.
 */
final class Reductions {
    private Reductions() {
    }

    /**
     * Sums {@code x} over the dimensions flagged in {@code reduced} into {@code out} (laid out as x's
     * shape with those dimensions removed), scaled by {@code scale}.
     */
    static void sum(float[] x, Shape shape, boolean[] reduced, float[] out, double scale) {
        int rank = shape.rank();
        int[] outStrides = new int[rank];
        int s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            outStrides[i] = reduced[i] ? 0 : s;
            s *= reduced[i] ? 1 : shape.dim(i);
        }
        double[] acc = new double[out.length];
        int n = (int) shape.numel();
        if (rank == 0) {
            acc[0] = n == 1 ? x[0] : 0;
        } else {
            int inner = shape.dim(rank - 1);
            int innerStride = outStrides[rank - 1];
            int[] idx = new int[rank];
            int dst = 0;
            for (int o = 0; o < n; o += inner) {
                if (innerStride == 0) {
                    double t = 0;
                    for (int j = 0; j < inner; j++) {
                        t += x[o + j];
                    }
                    acc[dst] += t;
                } else {
                    for (int j = 0; j < inner; j++) {
                        acc[dst + j] += x[o + j];
                    }
                }
                for (int d = rank - 2; d >= 0; d--) {
                    idx[d]++;
                    dst += outStrides[d];
                    if (idx[d] < shape.dim(d)) {
                        break;
                    }
                    dst -= outStrides[d] * idx[d];
                    idx[d] = 0;
                }
            }
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (acc[i] * scale);
        }
    }

    /** {@code mean((pred - target)²)}. */
    static double mse(float[] pred, float[] target, int n) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            double d = (double) pred[i] - target[i];
            acc += d * d;
        }
        return n == 0 ? 0 : acc / n;
    }

    /** {@code dPred = dLoss · 2 (pred - target) / n}. */
    static void mseBackward(float dLoss, float[] pred, float[] target, float[] dPred, int n) {
        double k = 2.0 * dLoss / n;
        for (int i = 0; i < n; i++) {
            dPred[i] = (float) (k * ((double) pred[i] - target[i]));
        }
    }

    /** Rows of weight (V, D) at ids → out (ids.length, D). */
    static void embedding(float[] weight, int rows, int d, long[] ids, float[] out) {
        for (int i = 0; i < ids.length; i++) {
            int row = checkId(ids[i], rows, i);
            System.arraycopy(weight, row * d, out, i * d, d);
        }
    }

    /** Scatter-add of dOut (ids.length, D) into dWeight (V, D), in position order. */
    static void embeddingBackward(float[] dOut, long[] ids, int rows, int d, float[] dWeight) {
        for (int i = 0; i < ids.length; i++) {
            int row = checkId(ids[i], rows, i);
            for (int j = 0; j < d; j++) {
                dWeight[row * d + j] += dOut[i * d + j];
            }
        }
    }

    private static int checkId(long id, int rows, int position) {
        if (id < 0 || id >= rows) {
            throw new IllegalArgumentException("embedding: id " + id + " at position " + position
                    + " outside [0, " + rows + ")");
        }
        return (int) id;
    }

    /** {@code out (N, dim) = [cos(v f_k), sin(v f_k)]}, {@code f_k = exp(-ln(10000) k / half)}. */
    static void sinusoidal(double[] values, int dim, float[] out) {
        int half = dim / 2;
        // As sgm computes it, step by step in fp32: freqs = exp(-ln(10000) * arange(half) / half);
        // args = t[:, None].float() * freqs. torch's vectorised expf/sinf may differ from these correctly
        // rounded ones by an ulp, which at t ~ 2000 moves a value by up to ~1e-4.
        float negLog = (float) -Math.log(10000.0);
        float[] freqs = new float[half];
        for (int k = 0; k < half; k++) {
            float exponent = (negLog * (float) k) / (float) half;
            freqs[k] = (float) Math.exp(exponent);
        }
        for (int i = 0; i < values.length; i++) {
            for (int k = 0; k < half; k++) {
                float arg = (float) values[i] * freqs[k];
                out[i * dim + k] = (float) Math.cos(arg);
                out[i * dim + half + k] = (float) Math.sin(arg);
            }
        }
    }
}
