package tenmin.testing;

import java.util.function.ToDoubleFunction;

/**
 * Small, independent reference computations for the backends' op tests (cpu and torch): naive
 * double-precision loops written from the definitions (not from any backend), and central finite
 * differences of a scalar loss. Dimension legend: N batch, C/O channels, H/W spatial, T tokens, D head dim.
 */
public final class Reference {
    private Reference() {
    }

    public static float[] f(double[] d) {
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    public static double[] d(float[] f) {
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }

    /** Deterministic pseudo-random values in [-1, 1) (an LCG; tests print the seed in names). */
    public static float[] values(long seed, int n) {
        float[] out = new float[n];
        long s = seed * 6364136223846793005L + 1442695040888963407L;
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005L + 1442695040888963407L;
            out[i] = ((s >>> 40) / (float) (1L << 24)) * 2f - 1f;
        }
        return out;
    }

    /** {@code sum(loss)} gradient by central differences, step {@code h}. */
    public static double[] numericGrad(ToDoubleFunction<double[]> loss, double[] x, double h) {
        double[] g = new double[x.length];
        double[] p = x.clone();
        for (int i = 0; i < x.length; i++) {
            p[i] = x[i] + h;
            double up = loss.applyAsDouble(p);
            p[i] = x[i] - h;
            double down = loss.applyAsDouble(p);
            p[i] = x[i];
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** (M, K) x (K, N). */
    public static double[] mm(double[] a, double[] b, int m, int k, int n) {
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int t = 0; t < k; t++) {
                    s += a[i * k + t] * b[t * n + j];
                }
                out[i * n + j] = s;
            }
        }
        return out;
    }

    /** Transpose of a (R, C) matrix. */
    public static double[] t(double[] a, int r, int c) {
        double[] out = new double[a.length];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                out[j * r + i] = a[i * c + j];
            }
        }
        return out;
    }

    /** {@code x · wᵀ + bias}: x (R, K), w (N, K), bias (N) or null → (R, N). */
    public static double[] linear(double[] x, double[] w, double[] bias, int rows, int k, int n) {
        double[] out = mm(x, t(w, n, k), rows, k, n);
        if (bias != null) {
            for (int i = 0; i < out.length; i++) {
                out[i] += bias[i % n];
            }
        }
        return out;
    }

    /** Cross-correlation, x (N, C, H, W), w (O, C, k, k), zero padding p, stride s. */
    public static double[] conv(double[] x, double[] w, double[] bias, int n, int c, int h, int wd, int o, int k, int s, int p) {
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (wd + 2 * p - k) / s + 1;
        double[] out = new double[n * o * ho * wo];
        for (int b = 0; b < n; b++) {
            for (int oc = 0; oc < o; oc++) {
                for (int y = 0; y < ho; y++) {
                    for (int xx = 0; xx < wo; xx++) {
                        double acc = bias == null ? 0 : bias[oc];
                        for (int ic = 0; ic < c; ic++) {
                            for (int i = 0; i < k; i++) {
                                for (int j = 0; j < k; j++) {
                                    int iy = y * s + i - p;
                                    int ix = xx * s + j - p;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                                        acc += x[((b * c + ic) * h + iy) * wd + ix] * w[((oc * c + ic) * k + i) * k + j];
                                    }
                                }
                            }
                        }
                        out[((b * o + oc) * ho + y) * wo + xx] = acc;
                    }
                }
            }
        }
        return out;
    }

    /**
     * Gradients of {@link #conv} for the output gradient dy (N, O, Ho, Wo), by the same direct sums:
     * {@code {dx (N, C, H, W), dW (O, C, k, k)}} with {@code dx[x-index] += w·dy} and {@code dW += dy·x} over
     * every tap that reads inside the image.
     */
    public static double[][] convBackward(double[] dy, double[] x, double[] w, int n, int c, int h, int wd, int o,
                                          int k, int s, int p) {
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (wd + 2 * p - k) / s + 1;
        double[] dx = new double[x.length];
        double[] dw = new double[w.length];
        for (int b = 0; b < n; b++) {
            for (int oc = 0; oc < o; oc++) {
                for (int ic = 0; ic < c; ic++) {
                    for (int i = 0; i < k; i++) {
                        for (int j = 0; j < k; j++) {
                            int wi = ((oc * c + ic) * k + i) * k + j;
                            for (int y = 0; y < ho; y++) {
                                int iy = y * s + i - p;
                                if (iy < 0 || iy >= h) {
                                    continue;
                                }
                                for (int xx = 0; xx < wo; xx++) {
                                    int ix = xx * s + j - p;
                                    if (ix < 0 || ix >= wd) {
                                        continue;
                                    }
                                    int xi = ((b * c + ic) * h + iy) * wd + ix;
                                    double g = dy[((b * o + oc) * ho + y) * wo + xx];
                                    dx[xi] += w[wi] * g;
                                    dw[wi] += g * x[xi];
                                }
                            }
                        }
                    }
                }
            }
        }
        return new double[][] {dx, dw};
    }

    /** Group norm of x (N, C, S) with optional per-channel gamma/beta. */
    public static double[] groupNorm(double[] x, double[] gamma, double[] beta, int n, int c, int spatial, int groups, double eps) {
        double[] y = new double[x.length];
        int cg = c / groups;
        for (int b = 0; b < n; b++) {
            for (int g = 0; g < groups; g++) {
                double mean = 0;
                int count = cg * spatial;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++) {
                    for (int i = 0; i < spatial; i++) {
                        mean += x[(b * c + ch) * spatial + i];
                    }
                }
                mean /= count;
                double var = 0;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++) {
                    for (int i = 0; i < spatial; i++) {
                        double dlt = x[(b * c + ch) * spatial + i] - mean;
                        var += dlt * dlt;
                    }
                }
                var /= count;
                double rstd = 1 / Math.sqrt(var + eps);
                for (int ch = g * cg; ch < (g + 1) * cg; ch++) {
                    for (int i = 0; i < spatial; i++) {
                        int idx = (b * c + ch) * spatial + i;
                        double v = (x[idx] - mean) * rstd;
                        y[idx] = v * (gamma == null ? 1 : gamma[ch]) + (beta == null ? 0 : beta[ch]);
                    }
                }
            }
        }
        return y;
    }

    /** Layer norm over the last dimension C of x (R, C). */
    public static double[] layerNorm(double[] x, double[] gamma, double[] beta, int rows, int c, double eps) {
        double[] y = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double mean = 0;
            for (int i = 0; i < c; i++) {
                mean += x[r * c + i];
            }
            mean /= c;
            double var = 0;
            for (int i = 0; i < c; i++) {
                double dlt = x[r * c + i] - mean;
                var += dlt * dlt;
            }
            var /= c;
            double rstd = 1 / Math.sqrt(var + eps);
            for (int i = 0; i < c; i++) {
                y[r * c + i] = (x[r * c + i] - mean) * rstd * (gamma == null ? 1 : gamma[i]) + (beta == null ? 0 : beta[i]);
            }
        }
        return y;
    }

    /** Attention per (batch·head) slice: q (B, Tq, D), k (B, Tk, D), v (B, Tk, Dv); returns out then lse appended. */
    public static double[][] attention(double[] q, double[] k, double[] v, int b, int tq, int tk, int dd, int dv,
                                boolean causal, double scale) {
        double[] out = new double[b * tq * dv];
        double[] lse = new double[b * tq];
        for (int s = 0; s < b; s++) {
            for (int i = 0; i < tq; i++) {
                double[] sc = new double[tk];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < tk; j++) {
                    if (causal && j > i) {
                        sc[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double acc = 0;
                    for (int t = 0; t < dd; t++) {
                        acc += q[(s * tq + i) * dd + t] * k[(s * tk + j) * dd + t];
                    }
                    sc[j] = acc * scale;
                    max = Math.max(max, sc[j]);
                }
                double sum = 0;
                for (int j = 0; j < tk; j++) {
                    sum += Math.exp(sc[j] - max);
                }
                lse[s * tq + i] = max + Math.log(sum);
                for (int j = 0; j < tk; j++) {
                    double pr = Math.exp(sc[j] - max) / sum;
                    for (int t = 0; t < dv; t++) {
                        out[(s * tq + i) * dv + t] += pr * v[(s * tk + j) * dv + t];
                    }
                }
            }
        }
        return new double[][] {out, lse};
    }

    /** erf by Simpson's rule on 2/sqrt(pi) exp(-t^2) (error far below 1e-9 for |x| < 6). */
    public static double erf(double x) {
        int steps = 2000;
        double h = x / steps;
        double acc = 1 + Math.exp(-x * x);
        for (int i = 1; i < steps; i++) {
            double t = i * h;
            acc += (i % 2 == 1 ? 4 : 2) * Math.exp(-t * t);
        }
        return acc * h / 3 * 2 / Math.sqrt(Math.PI);
    }

    /** SiLU {@code v·σ(v)}. */
    public static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    /** Exact GELU {@code v·Φ(v)} with {@link #erf}. */
    public static double gelu(double v) {
        return 0.5 * v * (1 + erf(v / Math.sqrt(2)));
    }

    /** GELU's tanh approximation {@code ½v(1 + tanh(√(2/π)(v + 0.044715v³)))}. */
    public static double geluTanh(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    /** CLIP's quick GELU {@code v·σ(1.702v)}. */
    public static double quickGelu(double v) {
        return v / (1 + Math.exp(-1.702 * v));
    }

    /** A symmetric (N, N) matrix of standard normal entries, row-major: the lower triangle drawn row by row, mirrored. */
    public static double[] randomSymmetric(java.util.SplittableRandom rnd, int n) {
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double v = rnd.nextGaussian();
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        return a;
    }
}
