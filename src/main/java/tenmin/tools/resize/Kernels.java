package tenmin.tools.resize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;
import tenmin.formats.StDType;

/**
 * The vectorised loops of resize: Gram matrices of the LoRA factors (double accumulation), the small-K
 * matrix products that build the output factors, dot products, and sums of squares of checkpoint
 * tensors read straight from the memory-mapped file.
 *
 * <p>Dimension legend: R rank, N the long dimension (in·k·k of a down factor, out of an up factor),
 * D kept directions.
 */
final class Kernels {
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble DOUBLE_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Columns per slab of the Gram kernel: 4 rows of a slab stay in L1, a whole slab in L2. */
    private static final int GRAM_SLAB = 512;
    /** Elements converted per step when summing squares of a mapped tensor. */
    private static final int CHUNK = 4096;
    /** Bytes of X per column block of {@link #multiplySmallK} (half of a 2 MiB L2). */
    private static final int MULTIPLY_BLOCK_BYTES = 1 << 20;

    private Kernels() {
    }

    /**
     * G = A·Aᵀ for A (rows, cols) row-major fp32, accumulated in double (products of fp32 values are exact
     * in double). Returns the full symmetric (rows, rows) matrix, row-major.
     */
    static double[] gramRows(float[] a, int rows, int cols) {
        int rp = (rows + 3) & ~3;
        int lanes = DS.length();
        int slab = Math.min(GRAM_SLAB, (cols + lanes - 1) / lanes * lanes);
        double[] s = new double[rp * slab]; // (rp, slab), zero padded
        double[] g = new double[rp * rp];
        for (int k0 = 0; k0 < cols; k0 += slab) {
            int w = Math.min(slab, cols - k0);
            for (int i = 0; i < rows; i++) {
                int src = i * cols + k0;
                int dst = i * slab;
                for (int k = 0; k < w; k++) {
                    s[dst + k] = a[src + k];
                }
                if (w < slab) {
                    java.util.Arrays.fill(s, dst + w, dst + slab, 0);
                }
            }
            for (int i = 0; i < rp; i += 4) {
                for (int j = 0; j <= i; j += 4) {
                    gram4x4(s, slab, i, j, g, rp);
                }
            }
        }
        double[] out = new double[rows * rows];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j <= i; j++) {
                double v = g[i * rp + j];
                out[i * rows + j] = v;
                out[j * rows + i] = v;
            }
        }
        return out;
    }

    /** g[i..i+3][j..j+3] += rows i..i+3 of s · rows j..j+3 of s over the slab width. */
    private static void gram4x4(double[] s, int width, int i, int j, double[] g, int ld) {
        DoubleVector c00 = DoubleVector.zero(DS), c01 = c00, c02 = c00, c03 = c00;
        DoubleVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        DoubleVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        DoubleVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int a0 = i * width, a1 = a0 + width, a2 = a1 + width, a3 = a2 + width;
        int b0 = j * width, b1 = b0 + width, b2 = b1 + width, b3 = b2 + width;
        for (int k = 0; k < width; k += DS.length()) {
            DoubleVector x0 = DoubleVector.fromArray(DS, s, a0 + k), x1 = DoubleVector.fromArray(DS, s, a1 + k);
            DoubleVector x2 = DoubleVector.fromArray(DS, s, a2 + k), x3 = DoubleVector.fromArray(DS, s, a3 + k);
            DoubleVector y0 = DoubleVector.fromArray(DS, s, b0 + k), y1 = DoubleVector.fromArray(DS, s, b1 + k);
            DoubleVector y2 = DoubleVector.fromArray(DS, s, b2 + k), y3 = DoubleVector.fromArray(DS, s, b3 + k);
            c00 = x0.fma(y0, c00); c01 = x0.fma(y1, c01); c02 = x0.fma(y2, c02); c03 = x0.fma(y3, c03);
            c10 = x1.fma(y0, c10); c11 = x1.fma(y1, c11); c12 = x1.fma(y2, c12); c13 = x1.fma(y3, c13);
            c20 = x2.fma(y0, c20); c21 = x2.fma(y1, c21); c22 = x2.fma(y2, c22); c23 = x2.fma(y3, c23);
            c30 = x3.fma(y0, c30); c31 = x3.fma(y1, c31); c32 = x3.fma(y2, c32); c33 = x3.fma(y3, c33);
        }
        int o = i * ld + j;
        g[o] += c00.reduceLanes(VectorOperators.ADD);
        g[o + 1] += c01.reduceLanes(VectorOperators.ADD);
        g[o + 2] += c02.reduceLanes(VectorOperators.ADD);
        g[o + 3] += c03.reduceLanes(VectorOperators.ADD);
        o += ld;
        g[o] += c10.reduceLanes(VectorOperators.ADD);
        g[o + 1] += c11.reduceLanes(VectorOperators.ADD);
        g[o + 2] += c12.reduceLanes(VectorOperators.ADD);
        g[o + 3] += c13.reduceLanes(VectorOperators.ADD);
        o += ld;
        g[o] += c20.reduceLanes(VectorOperators.ADD);
        g[o + 1] += c21.reduceLanes(VectorOperators.ADD);
        g[o + 2] += c22.reduceLanes(VectorOperators.ADD);
        g[o + 3] += c23.reduceLanes(VectorOperators.ADD);
        o += ld;
        g[o] += c30.reduceLanes(VectorOperators.ADD);
        g[o + 1] += c31.reduceLanes(VectorOperators.ADD);
        g[o + 2] += c32.reduceLanes(VectorOperators.ADD);
        g[o + 3] += c33.reduceLanes(VectorOperators.ADD);
    }

    /**
     * C = K·X: K (d, r) and X (r, n) row-major fp32, C (d, n) row-major. The inner dimension r is small
     * (a LoRA rank), n long; used for the new down factor (X = down) and the new up factor transposed
     * (X = upᵀ).
     */
    static float[] multiplySmallK(float[] k, int d, int r, float[] x, int n) {
        return multiplySmallK(k, d, r, x, n, new float[d * n]);
    }

    /** {@link #multiplySmallK(float[], int, int, float[], int)} into {@code c} (at least d·n long; overwritten). */
    static float[] multiplySmallK(float[] k, int d, int r, float[] x, int n, float[] c) {
        java.util.Arrays.fill(c, 0, d * n, 0f);
        int step = 4 * FS.length();
        int nv = n - n % step;
        // Column blocks of X small enough to stay in L2 while every 4-row block of K passes over them.
        int block = Math.max(step, (MULTIPLY_BLOCK_BYTES / (4 * Math.max(1, r))) / step * step);
        int dv = d - d % 4;
        for (int j0 = 0; j0 < nv; j0 += block) {
            int j1 = Math.min(nv, j0 + block);
            for (int i = 0; i < dv; i += 4) {
                for (int j = j0; j < j1; j += step) {
                    block4x4(k, r, i, x, n, j, c);
                }
            }
        }
        for (int i = 0; i < dv; i++) {
            rowTail(k, r, i, x, n, nv, c);
        }
        for (int i = dv; i < d; i++) {
            rowTail(k, r, i, x, n, 0, c);
        }
        return c;
    }

    /** c[i..i+3][j .. j+4·lanes) = k[i..i+3][:] · x[:][j .. j+4·lanes). */
    private static void block4x4(float[] k, int r, int i, float[] x, int n, int j, float[] c) {
        int l = FS.length();
        FloatVector c00 = FloatVector.zero(FS), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int k0 = i * r, k1 = k0 + r, k2 = k1 + r, k3 = k2 + r;
        for (int q = 0; q < r; q++) {
            int xo = q * n + j;
            FloatVector x0 = FloatVector.fromArray(FS, x, xo), x1 = FloatVector.fromArray(FS, x, xo + l);
            FloatVector x2 = FloatVector.fromArray(FS, x, xo + 2 * l), x3 = FloatVector.fromArray(FS, x, xo + 3 * l);
            FloatVector a0 = FloatVector.broadcast(FS, k[k0 + q]), a1 = FloatVector.broadcast(FS, k[k1 + q]);
            FloatVector a2 = FloatVector.broadcast(FS, k[k2 + q]), a3 = FloatVector.broadcast(FS, k[k3 + q]);
            c00 = a0.fma(x0, c00); c01 = a0.fma(x1, c01); c02 = a0.fma(x2, c02); c03 = a0.fma(x3, c03);
            c10 = a1.fma(x0, c10); c11 = a1.fma(x1, c11); c12 = a1.fma(x2, c12); c13 = a1.fma(x3, c13);
            c20 = a2.fma(x0, c20); c21 = a2.fma(x1, c21); c22 = a2.fma(x2, c22); c23 = a2.fma(x3, c23);
            c30 = a3.fma(x0, c30); c31 = a3.fma(x1, c31); c32 = a3.fma(x2, c32); c33 = a3.fma(x3, c33);
        }
        int o = i * n + j;
        c00.intoArray(c, o); c01.intoArray(c, o + l); c02.intoArray(c, o + 2 * l); c03.intoArray(c, o + 3 * l);
        o += n;
        c10.intoArray(c, o); c11.intoArray(c, o + l); c12.intoArray(c, o + 2 * l); c13.intoArray(c, o + 3 * l);
        o += n;
        c20.intoArray(c, o); c21.intoArray(c, o + l); c22.intoArray(c, o + 2 * l); c23.intoArray(c, o + 3 * l);
        o += n;
        c30.intoArray(c, o); c31.intoArray(c, o + l); c32.intoArray(c, o + 2 * l); c33.intoArray(c, o + 3 * l);
    }

    /** c[i][from..n) = k[i][:] · x[:][from..n), one row, vector then scalar tail. */
    private static void rowTail(float[] k, int r, int i, float[] x, int n, int from, float[] c) {
        int o = i * n;
        for (int q = 0; q < r; q++) {
            float a = k[i * r + q];
            if (a == 0) {
                continue;
            }
            int xo = q * n;
            int j = from;
            FloatVector va = FloatVector.broadcast(FS, a);
            for (; j + FS.length() <= n; j += FS.length()) {
                va.fma(FloatVector.fromArray(FS, x, xo + j), FloatVector.fromArray(FS, c, o + j)).intoArray(c, o + j);
            }
            for (; j < n; j++) {
                c[o + j] += a * x[xo + j];
            }
        }
    }

    /** sum_k a[ai+k] * b[bi+k] over len elements (fp32 lanes, double total). */
    static double dot(float[] a, int ai, float[] b, int bi, int len) {
        FloatVector acc = FloatVector.zero(FS);
        int k = 0;
        int bound = FS.loopBound(len);
        for (; k < bound; k += FS.length()) {
            acc = FloatVector.fromArray(FS, a, ai + k).fma(FloatVector.fromArray(FS, b, bi + k), acc);
        }
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; k < len; k++) {
            s += a[ai + k] * b[bi + k];
        }
        return s;
    }

    /** y[yi+k] += alpha * x[xi+k] over len elements (fp32). */
    static void axpy(float alpha, float[] x, int xi, float[] y, int yi, int len) {
        FloatVector va = FloatVector.broadcast(FS, alpha);
        int k = 0;
        int bound = FS.loopBound(len);
        for (; k < bound; k += FS.length()) {
            va.fma(FloatVector.fromArray(FS, x, xi + k), FloatVector.fromArray(FS, y, yi + k)).intoArray(y, yi + k);
        }
        for (; k < len; k++) {
            y[yi + k] += alpha * x[xi + k];
        }
    }

    /**
     * Sum of squares of {@code count} elements of type {@code dtype} starting at byte {@code offset} of a
     * (memory-mapped) segment, each element converted to fp32 as the reference does, summed in double.
     * Non-finite elements give a non-finite result, as in the reference.
     */
    static double sumSquares(MemorySegment seg, long offset, long count, StDType dtype) {
        return switch (dtype) {
            case F16 -> sumSquaresHalf(seg, offset, count, false);
            case BF16 -> sumSquaresHalf(seg, offset, count, true);
            case F32 -> sumSquaresF32(seg, offset, count);
            case F8_E4M3 -> sumSquaresFp8(seg, offset, count);
            case F64 -> {
                double s = 0;
                for (long i = 0; i < count; i++) {
                    float f = (float) seg.get(DOUBLE_LE, offset + 8 * i);
                    s += (double) f * f;
                }
                yield s;
            }
            default -> throw new IllegalArgumentException("not a float type: " + dtype);
        };
    }

    private static double sumSquaresHalf(MemorySegment seg, long offset, long count, boolean bf16) {
        short[] raw = new short[CHUNK];
        float[] f = new float[CHUNK];
        double total = 0;
        for (long start = 0; start < count; start += CHUNK) {
            total += sumSquaresHalf(seg, offset + 2 * start, (int) Math.min(CHUNK, count - start), bf16, raw, f);
        }
        return total;
    }

    /**
     * One chunk of {@link #sumSquaresHalf(MemorySegment, long, long, boolean)}. A method of its own: called once
     * per chunk, it is compiled after a few hundred chunks, while a loop over a large weight's chunks would run
     * interpreted until its on-stack replacement (tens of thousands of iterations).
     */
    private static double sumSquaresHalf(MemorySegment seg, long offset, int n, boolean bf16, short[] raw, float[] f) {
        MemorySegment.copy(seg, SHORT_LE, offset, raw, 0, n);
        if (bf16) {
            for (int i = 0; i < n; i++) {
                f[i] = Float.intBitsToFloat(raw[i] << 16);
            }
        } else {
            Half.f16ToF32(raw, n, f, 0); // vector fp16 conversions once compiled
        }
        return sumSquares(f, n);
    }

    private static double sumSquaresFp8(MemorySegment seg, long offset, long count) {
        byte[] raw = new byte[CHUNK];
        float[] f = new float[CHUNK];
        double total = 0;
        for (long start = 0; start < count; start += CHUNK) {
            int n = (int) Math.min(CHUNK, count - start);
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, offset + start, raw, 0, n);
            Fp8E4m3.decode(raw, 0, n, f, 0);
            total += sumSquares(f, n);
        }
        return total;
    }

    private static double sumSquaresF32(MemorySegment seg, long offset, long count) {
        float[] f = new float[CHUNK];
        double total = 0;
        for (long start = 0; start < count; start += CHUNK) {
            int n = (int) Math.min(CHUNK, count - start);
            MemorySegment.copy(seg, FLOAT_LE, offset + 4 * start, f, 0, n);
            total += sumSquares(f, n);
        }
        return total;
    }

    /** Sum of squares of f[0..n), fp32 lanes, double total. */
    static double sumSquares(float[] f, int n) {
        FloatVector acc = FloatVector.zero(FS);
        int i = 0;
        int bound = FS.loopBound(n);
        for (; i < bound; i += FS.length()) {
            FloatVector v = FloatVector.fromArray(FS, f, i);
            acc = v.fma(v, acc);
        }
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += f[i] * f[i];
        }
        return s;
    }
}
