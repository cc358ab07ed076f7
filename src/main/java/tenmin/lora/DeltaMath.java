package tenmin.lora;

import java.util.stream.IntStream;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import tenmin.engine.blas.OpenBlas;

/**
 * Arithmetic on a LoRA delta {@code ΔW = s · U @ D} without forming it when not needed.
 *
 * <p>Legend: O output rows, R rank, C columns (I·Kh·Kw). {@code U} is {@code [O, R]}, {@code D} is
 * {@code [R, C]}, both row-major fp32; {@code s} is alpha/R times any strength.
 */
public final class DeltaMath {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Columns of D widened at a time for OpenBLAS (R rows of 512 doubles stay in cache). */
    private static final int GRAM_BLOCK = 512;

    private DeltaMath() {
    }

    /**
     * {@code ‖s · U @ D‖_F}, exactly, via {@code ‖UD‖_F² = trace((UᵀU)(DDᵀ)) = Σ_ij (UᵀU)_ij (DDᵀ)_ij}:
     * two R×R Gram matrices, {@code O·R² + C·R²} multiply-adds, no dense O×C product.
     */
    public static double frobeniusNorm(float[] up, float[] down, int rows, int rank, int cols, double scale) {
        return frobeniusNorm(null, up, down, rows, rank, cols, scale);
    }

    /**
     * {@link #frobeniusNorm(float[], float[], int, int, int, double)} with the Gram matrices by OpenBLAS's
     * {@code dsyrk} when {@code blas} is not null: in double, {@code D} widened in blocks of
     * {@value #GRAM_BLOCK} columns that stay in cache.
     */
    public static double frobeniusNorm(OpenBlas blas, float[] up, float[] down, int rows, int rank, int cols,
                                       double scale) {
        if (blas != null) {
            double[] wide = new double[Math.max(rows, Math.min(cols, GRAM_BLOCK)) * rank];
            for (int i = 0; i < rows * rank; i++) {
                wide[i] = up[i];
            }
            double[] gu = new double[rank * rank];
            blas.gramColumns(wide, rows, rank, gu);               // UᵀU (R, R)
            double[] gd = blas.gramRowsInBlocks(rank, cols, GRAM_BLOCK, wide, (c0, cb, block) -> { // D Dᵀ (R, R)
                for (int j = 0; j < rank; j++) {
                    for (int c = 0; c < cb; c++) {
                        block[j * cb + c] = down[j * cols + c0 + c];
                    }
                }
            });
            return traceNorm(gu, gd, scale);
        }
        float[] upT = new float[rank * rows]; // (R, O)
        for (int o = 0; o < rows; o++) {
            for (int j = 0; j < rank; j++) {
                upT[j * rows + o] = up[o * rank + j];
            }
        }
        double[] gu = gram(upT, rank, rows);  // (R, R)
        double[] gd = gram(down, rank, cols); // (R, R)
        return traceNorm(gu, gd, scale);
    }

    /** {@code |s|·sqrt(Σ_ij Gu_ij·Gd_ij)}. */
    private static double traceNorm(double[] gu, double[] gd, double scale) {
        double sum = 0;
        for (int i = 0; i < gu.length; i++) {
            sum += gu[i] * gd[i];
        }
        return Math.abs(scale) * Math.sqrt(Math.max(0, sum));
    }

    /** {@code G = A Aᵀ} for row-major {@code A (n, len)}; symmetric, both halves filled; rows in parallel. */
    static double[] gram(float[] a, int n, int len) {
        double[] g = new double[n * n];
        IntStream.range(0, n).parallel().forEach(i -> {
            int j = i;
            for (; j + 3 < n; j += 4) {
                dot4(a, i * len, j * len, len, g, i * n + j);
            }
            for (; j < n; j++) {
                g[i * n + j] = dot(a, i * len, a, j * len, len);
            }
        });
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                g[i * n + j] = g[j * n + i];
            }
        }
        return g;
    }

    /** Dot products of row {@code x} with four consecutive rows starting at {@code y} (x loaded once). */
    private static void dot4(float[] a, int x, int y, int len, double[] out, int at) {
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = FloatVector.zero(F);
        FloatVector s2 = FloatVector.zero(F);
        FloatVector s3 = FloatVector.zero(F);
        int step = F.length();
        int bound = F.loopBound(len);
        int c = 0;
        for (; c < bound; c += step) {
            FloatVector vx = FloatVector.fromArray(F, a, x + c);
            s0 = vx.fma(FloatVector.fromArray(F, a, y + c), s0);
            s1 = vx.fma(FloatVector.fromArray(F, a, y + len + c), s1);
            s2 = vx.fma(FloatVector.fromArray(F, a, y + 2 * len + c), s2);
            s3 = vx.fma(FloatVector.fromArray(F, a, y + 3 * len + c), s3);
        }
        double t0 = s0.reduceLanes(VectorOperators.ADD);
        double t1 = s1.reduceLanes(VectorOperators.ADD);
        double t2 = s2.reduceLanes(VectorOperators.ADD);
        double t3 = s3.reduceLanes(VectorOperators.ADD);
        for (; c < len; c++) {
            double v = a[x + c];
            t0 += v * a[y + c];
            t1 += v * a[y + len + c];
            t2 += v * a[y + 2 * len + c];
            t3 += v * a[y + 3 * len + c];
        }
        out[at] = t0;
        out[at + 1] = t1;
        out[at + 2] = t2;
        out[at + 3] = t3;
    }

    /** {@code Σ_c a[x+c]·b[y+c]} over {@code len} elements (vector lanes in fp32, total in double). */
    public static double dot(float[] a, int x, float[] b, int y, int len) {
        FloatVector s = FloatVector.zero(F);
        int bound = F.loopBound(len);
        int c = 0;
        for (; c < bound; c += F.length()) {
            s = FloatVector.fromArray(F, a, x + c).fma(FloatVector.fromArray(F, b, y + c), s);
        }
        double t = s.reduceLanes(VectorOperators.ADD);
        for (; c < len; c++) {
            t += (double) a[x + c] * b[y + c];
        }
        return t;
    }

    /**
     * {@code W[rowOffset + o, :] += s · Σ_j U[o, j] · D[j, :]} in fp32 for every o in {@code [0, O)}: adds
     * the delta into rows of a row-major weight of {@code cols} columns (a whole weight, or one row chunk
     * of a fused q/k/v weight). Rows run in parallel.
     */
    public static void addDelta(float[] w, int rowOffset, float[] up, float[] down, int rows, int rank, int cols,
                                float scale) {
        addDelta(null, w, rowOffset, up, down, rows, rank, cols, scale);
    }

    /**
     * {@link #addDelta(float[], int, float[], float[], int, int, int, float)} by OpenBLAS's {@code sgemm} when
     * {@code blas} is not null ({@code W_rows = scale·U·D + W_rows}, blocked for the caches: the Java loop below
     * streams all of D once per row of W), one band of rows per core.
     */
    public static void addDelta(OpenBlas blas, float[] w, int rowOffset, float[] up, float[] down, int rows, int rank,
                                int cols, float scale) {
        if (blas != null) {
            int parts = Math.max(1, Math.min(rows, Runtime.getRuntime().availableProcessors()));
            IntStream.range(0, parts).parallel().forEach(p -> {
                int o0 = (int) ((long) rows * p / parts);
                int o1 = (int) ((long) rows * (p + 1) / parts);
                if (o1 > o0) {
                    blas.multiplyAdd(false, false, o1 - o0, cols, rank, scale, up, o0 * rank, rank, down, 0, cols, 1f,
                            w, (rowOffset + o0) * cols, cols);
                }
            });
            return;
        }
        IntStream.range(0, rows).parallel().forEach(o -> {
            int base = (rowOffset + o) * cols;
            int j = 0;
            // four rank rows per pass: W is loaded and stored once per four multiply-adds
            for (; j + 3 < rank; j += 4) {
                addRows4(w, base, down, j * cols, cols, scale * up[o * rank + j], scale * up[o * rank + j + 1],
                        scale * up[o * rank + j + 2], scale * up[o * rank + j + 3]);
            }
            for (; j < rank; j++) {
                float a = scale * up[o * rank + j];
                int d = j * cols;
                for (int c = 0; c < cols; c++) {
                    w[base + c] += a * down[d + c];
                }
            }
        });
    }

    /** {@code w[base + c] += a0·D[d+c] + a1·D[d+cols+c] + a2·D[d+2cols+c] + a3·D[d+3cols+c]}, in that order. */
    private static void addRows4(float[] w, int base, float[] down, int d, int cols, float a0, float a1, float a2,
                                 float a3) {
        FloatVector v0 = FloatVector.broadcast(F, a0);
        FloatVector v1 = FloatVector.broadcast(F, a1);
        FloatVector v2 = FloatVector.broadcast(F, a2);
        FloatVector v3 = FloatVector.broadcast(F, a3);
        int bound = F.loopBound(cols);
        int c = 0;
        for (; c < bound; c += F.length()) {
            FloatVector acc = FloatVector.fromArray(F, w, base + c);
            acc = acc.add(v0.mul(FloatVector.fromArray(F, down, d + c)));
            acc = acc.add(v1.mul(FloatVector.fromArray(F, down, d + cols + c)));
            acc = acc.add(v2.mul(FloatVector.fromArray(F, down, d + 2 * cols + c)));
            acc = acc.add(v3.mul(FloatVector.fromArray(F, down, d + 3 * cols + c)));
            acc.intoArray(w, base + c);
        }
        for (; c < cols; c++) {
            float acc = w[base + c];
            acc += a0 * down[d + c];
            acc += a1 * down[d + cols + c];
            acc += a2 * down[d + 2 * cols + c];
            acc += a3 * down[d + 3 * cols + c];
            w[base + c] = acc;
        }
    }
}
