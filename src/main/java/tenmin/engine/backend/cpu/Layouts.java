package tenmin.engine.backend.cpu;

import tenmin.engine.api.Shape;

/**
 * Data-movement kernels: permute, narrow and its backward, concatenation, 2-D zero padding, nearest
 * 2x upsampling and its backward. Work on either float or long storage where noted.
 *
 * <p>Legend: N batch, C channels, H/W spatial; "outer/size/inner" split a shape around one dimension.
 */
final class Layouts {
    private Layouts() {
    }

    /** {@code out} = {@code in} with dimensions reordered, {@code out.dim(i) = in.dim(perm[i])}. */
    static void permute(Object in, Shape inShape, int[] perm, Object out) {
        int rank = inShape.rank();
        int[] inStrides = new int[rank];
        int s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            inStrides[i] = s;
            s *= inShape.dim(i);
        }
        int[] outDims = new int[rank];
        int[] strides = new int[rank];
        for (int i = 0; i < rank; i++) {
            outDims[i] = inShape.dim(perm[i]);
            strides[i] = inStrides[perm[i]];
        }
        int n = (int) inShape.numel();
        if (n == 0) {
            return;
        }
        int[] idx = new int[rank];
        int src = 0;
        int inner = rank == 0 ? 1 : outDims[rank - 1];
        int innerStride = rank == 0 ? 0 : strides[rank - 1];
        float[] fi = in instanceof float[] f ? f : null;
        float[] fo = out instanceof float[] f ? f : null;
        long[] li = in instanceof long[] l ? l : null;
        long[] lo = out instanceof long[] l ? l : null;
        for (int o = 0; o < n; o += inner) {
            if (fi != null) {
                for (int j = 0; j < inner; j++) {
                    fo[o + j] = fi[src + j * innerStride];
                }
            } else {
                for (int j = 0; j < inner; j++) {
                    lo[o + j] = li[src + j * innerStride];
                }
            }
            for (int d = rank - 2; d >= 0; d--) {
                idx[d]++;
                src += strides[d];
                if (idx[d] < outDims[d]) {
                    break;
                }
                src -= strides[d] * idx[d];
                idx[d] = 0;
            }
        }
    }

    /**
     * Copies the block {@code [start, start+length)} of dimension {@code axis} between a tensor of
     * {@code full} shape and a tensor with that dimension of size {@code length}:
     * {@code toPart} true reads the full tensor (narrow), false writes into it (narrow backward, cat).
     */
    static void block(Object fullData, Shape full, int axis, int start, int length, Object partData, boolean toPart) {
        int outer = (int) full.numel(0, axis);
        int size = full.dim(axis);
        int inner = (int) full.numel(axis + 1, full.rank());
        int chunk = length * inner;
        for (int o = 0; o < outer; o++) {
            int f = (o * size + start) * inner;
            int p = o * chunk;
            if (toPart) {
                System.arraycopy(fullData, f, partData, p, chunk);
            } else {
                System.arraycopy(partData, p, fullData, f, chunk);
            }
        }
    }

    /** Zero padding of the last two dims: in (.., H, W) → out (.., top+H+bottom, left+W+right); out is zeroed. */
    static void pad2d(float[] in, Shape inShape, int left, int top, float[] out, int outH, int outW) {
        int h = inShape.dim(-2);
        int w = inShape.dim(-1);
        int planes = (int) (inShape.numel() / Math.max(1, (long) h * w));
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < h; i++) {
                System.arraycopy(in, (p * h + i) * w, out, (p * outH + i + top) * outW + left, w);
            }
        }
    }

    /** Nearest 2x upsampling of planes (.., H, W). */
    static void upsample2x(float[] in, int planes, int h, int w, float[] out) {
        int w2 = 2 * w;
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < h; i++) {
                int src = (p * h + i) * w;
                int dst = (p * 2 * h + 2 * i) * w2;
                for (int j = 0; j < w; j++) {
                    float v = in[src + j];
                    out[dst + 2 * j] = v;
                    out[dst + 2 * j + 1] = v;
                }
                System.arraycopy(out, dst, out, dst + w2, w2);
            }
        }
    }

    /** Backward of {@link #upsample2x}: each input cell gets the sum of its 2x2 block. */
    static void upsample2xBackward(float[] dOut, int planes, int h, int w, float[] dx) {
        int w2 = 2 * w;
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < h; i++) {
                int r0 = (p * 2 * h + 2 * i) * w2;
                int r1 = r0 + w2;
                int dst = (p * h + i) * w;
                for (int j = 0; j < w; j++) {
                    dx[dst + j] = dOut[r0 + 2 * j] + dOut[r0 + 2 * j + 1] + dOut[r1 + 2 * j] + dOut[r1 + 2 * j + 1];
                }
            }
        }
    }
}
