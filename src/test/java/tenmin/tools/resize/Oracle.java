package tenmin.tools.resize;

import java.util.Arrays;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;

/**
 * The test suite's independent view of resize: dense deltas and their SVD in double with EJML (a
 * different library and algorithm than the production low-rank path), norms summed directly.
 */
final class Oracle {
    private Oracle() {
    }

    /** A dense SVD: U (rows, k), S (k) descending, V (cols, k). */
    record Svd(DMatrixRMaj u, double[] s, DMatrixRMaj v) {
        /** U_k diag(S_k) V_kᵀ over the first {@code k} directions, flattened row-major. */
        double[] truncated(int k) {
            int rows = u.numRows;
            int cols = v.numRows;
            double[] out = new double[rows * cols];
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    double acc = 0;
                    for (int q = 0; q < k; q++) {
                        acc += u.get(i, q) * s[q] * v.get(j, q);
                    }
                    out[i * cols + j] = acc;
                }
            }
            return out;
        }
    }

    /** SVD of a dense (rows, cols) matrix, values sorted descending. */
    static Svd svd(double[] a, int rows, int cols) {
        DMatrixRMaj m = new DMatrixRMaj(rows, cols, true, a);
        SingularValueDecomposition_F64<DMatrixRMaj> d = DecompositionFactory_DDRM.svd(rows, cols, true, true, true);
        if (!d.decompose(m.copy())) {
            throw new AssertionError("EJML SVD failed");
        }
        DMatrixRMaj u = d.getU(null, false);
        DMatrixRMaj v = d.getV(null, false);
        double[] s = d.getSingularValues();
        int k = Math.min(rows, cols);
        Integer[] order = new Integer[k];
        for (int i = 0; i < k; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (x, y) -> Double.compare(s[y], s[x]));
        DMatrixRMaj us = new DMatrixRMaj(rows, k);
        DMatrixRMaj vs = new DMatrixRMaj(cols, k);
        double[] ss = new double[k];
        for (int q = 0; q < k; q++) {
            ss[q] = s[order[q]];
            for (int i = 0; i < rows; i++) {
                us.set(i, q, u.get(i, order[q]));
            }
            for (int j = 0; j < cols; j++) {
                vs.set(j, q, v.get(j, order[q]));
            }
        }
        return new Svd(us, ss, vs);
    }

    /** scale · up (out, r) · down (r, cols), in double. */
    static double[] delta(float[] up, float[] down, int out, int r, int cols, double scale) {
        DMatrixRMaj u = new DMatrixRMaj(out, r);
        DMatrixRMaj d = new DMatrixRMaj(r, cols);
        for (int i = 0; i < up.length; i++) {
            u.data[i] = up[i];
        }
        for (int i = 0; i < down.length; i++) {
            d.data[i] = down[i];
        }
        DMatrixRMaj w = new DMatrixRMaj(out, cols);
        CommonOps_DDRM.mult(scale, u, d, w);
        return w.data;
    }

    /** Largest singular value of a dense matrix (EJML, values only). */
    static double spectralNorm(float[] w, int rows, int cols) {
        double[] a = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            a[i] = w[i];
        }
        return svd(a, rows, cols).s()[0];
    }

    /** sqrt(Σ x²) in double. */
    static double frobenius(float[] w) {
        double s = 0;
        for (float x : w) {
            s += (double) x * x;
        }
        return Math.sqrt(s);
    }

    /** A tensor of a file as fp32, converted element by element with the shared fp16/bf16 routines. */
    static float[] read(SafetensorsFile f, String name) {
        TensorInfo t = f.info(name);
        java.lang.foreign.MemorySegment seg = f.segment(name);
        float[] out = new float[(int) t.numel()];
        var le = java.nio.ByteOrder.LITTLE_ENDIAN;
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (t.dtype()) {
                case F16 -> Half.f16ToF32(seg.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le), 2L * i));
                case BF16 -> Half.bf16ToF32(seg.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le), 2L * i));
                case F32 -> seg.get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(le), 4L * i);
                default -> throw new AssertionError("unexpected dtype " + t.dtype());
            };
        }
        return out;
    }

    /** Rows [from, to) of a (rows, cols) row-major matrix. */
    static float[] rows(float[] w, int cols, int from, int to) {
        return Arrays.copyOfRange(w, from * cols, to * cols);
    }

    /** max |a - b| / max |b|. */
    static double relError(double[] expected, double[] actual) {
        double maxAbs = 0;
        double maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(actual[i] - expected[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return maxRef == 0 ? maxAbs : maxAbs / maxRef;
    }
}
