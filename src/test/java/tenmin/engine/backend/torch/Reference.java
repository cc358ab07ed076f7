package tenmin.engine.backend.torch;

import java.util.function.ToDoubleFunction;

/**
 * Small, independent reference computations for the torch op tests: naive double-precision loops
 * written from the definitions (not from libtorch), and central finite differences of a scalar loss.
 * Dimension legend: N batch, C/O channels, H/W spatial, T tokens, D head dim.
 */
final class Reference {
    private Reference() {
    }

    static float[] f(double[] d) {
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    static double[] d(float[] f) {
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }

    /** Deterministic pseudo-random values in [-1, 1) (an LCG; tests print the seed in names). */
    static float[] values(long seed, int n) {
        float[] out = new float[n];
        long s = seed * 6364136223846793005L + 1442695040888963407L;
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005L + 1442695040888963407L;
            out[i] = ((s >>> 40) / (float) (1L << 24)) * 2f - 1f;
        }
        return out;
    }

    /** {@code sum(loss)} gradient by central differences, step {@code h}. */
    static double[] numericGrad(ToDoubleFunction<double[]> loss, double[] x, double h) {
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

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** (M, K) x (K, N). */
    static double[] mm(double[] a, double[] b, int m, int k, int n) {
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
    static double[] t(double[] a, int r, int c) {
        double[] out = new double[a.length];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                out[j * r + i] = a[i * c + j];
            }
        }
        return out;
    }

    /** Cross-correlation, x (N, C, H, W), w (O, C, k, k), zero padding p, stride s. */
    static double[] conv(double[] x, double[] w, double[] bias, int n, int c, int h, int wd, int o, int k, int s, int p) {
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

    /** Group norm of x (N, C, S) with optional per-channel gamma/beta. */
    static double[] groupNorm(double[] x, double[] gamma, double[] beta, int n, int c, int spatial, int groups, double eps) {
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
    static double[] layerNorm(double[] x, double[] gamma, double[] beta, int rows, int c, double eps) {
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
    static double[][] attention(double[] q, double[] k, double[] v, int b, int tq, int tk, int dd, int dv,
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
    static double erf(double x) {
        int steps = 2000;
        double h = x / steps;
        double acc = 1 + Math.exp(-x * x);
        for (int i = 1; i < steps; i++) {
            double t = i * h;
            acc += (i % 2 == 1 ? 4 : 2) * Math.exp(-t * t);
        }
        return acc * h / 3 * 2 / Math.sqrt(Math.PI);
    }
}
