package tenmin.engine.backend.cpu;

import java.util.Arrays;

/**
 * 2-D convolution as im2col + GEMM, forward and backward, in bands of output rows so the column
 * buffer stays bounded whatever the image size.
 *
 * <p>Legend: N batch, C input channels, O output channels, H/W input size, Ho/Wo output size,
 * k kernel size, s stride, p zero padding, CKK = C·k·k. For output rows [i0, i0+R) of one image,
 * {@code col} (CKK, R·Wo) holds {@code x[c, i·s + u - p, j·s + v - p]} at row (c, u, v), column
 * (i - i0, j) (0 outside the image), so that band of {@code y} is {@code W (O, CKK) · col + b}. A band
 * has at most {@link #COL_BUDGET} values (and at least one output row). A 1x1 convolution with stride 1
 * and no padding is a GEMM on x itself.
 */
final class Convolution {
    /** Most values in one band's column buffer (16 MB). */
    static final int COL_BUDGET = 1 << 22;
    /** Workspace slots of the calling thread for col and dcol (Gemm uses 0..2, Attention 3..4). */
    private static final int SLOT_COL = 5;
    private static final int SLOT_DCOL = 6;

    /** Geometry of one convolution. */
    record Geometry(int n, int c, int h, int w, int o, int k, int stride, int pad) {
        int outH() {
            return (h + 2 * pad - k) / stride + 1;
        }

        int outW() {
            return (w + 2 * pad - k) / stride + 1;
        }

        int ckk() {
            return c * k * k;
        }

        boolean isPointwise() {
            return k == 1 && stride == 1 && pad == 0;
        }

        /** Output rows per band: as many as fit {@link #COL_BUDGET}, at least one. */
        int bandRows() {
            long perRow = (long) ckk() * outW();
            return (int) Math.max(1, Math.min(outH(), COL_BUDGET / Math.max(1, perRow)));
        }
    }

    private Convolution() {
    }

    /** y (N, O, Ho, Wo) = conv(x (N, C, H, W), w (O, C, k, k)) + bias (O) or null. */
    static void forward(Parallel par, Geometry g, float[] x, float[] w, float[] bias, float[] y) {
        int hw = g.h() * g.w();
        int ohw = g.outH() * g.outW();
        int band = g.bandRows();
        for (int n = 0; n < g.n(); n++) {
            int xOff = n * g.c() * hw;
            int yOff = n * g.o() * ohw;
            if (g.isPointwise()) {
                Gemm.multiply(par, w, 0, false, x, xOff, false, y, yOff, g.o(), ohw, g.ckk(), false);
            } else {
                float[] col = par.workspace().floats(SLOT_COL, g.ckk() * band * g.outW());
                for (int i0 = 0; i0 < g.outH(); i0 += band) {
                    int cols = Math.min(band, g.outH() - i0) * g.outW();
                    im2col(par, g, x, xOff, i0, cols / g.outW(), col);
                    // y band (O, cols), rows ohw apart = W (O, CKK) · col (CKK, cols)
                    Gemm.multiply(par, w, 0, g.ckk(), 1, col, 0, cols, 1, y, yOff + i0 * g.outW(), ohw,
                            g.o(), cols, g.ckk(), false);
                }
            }
            if (bias != null) {
                for (int o = 0; o < g.o(); o++) {
                    float b = bias[o];
                    int at = yOff + o * ohw;
                    for (int i = 0; i < ohw; i++) {
                        y[at + i] += b;
                    }
                }
            }
        }
    }

    /**
     * Gradients of {@link #forward}; each output array may be null (not requested).
     * dx = col2im(Wᵀ · dy); dW = Σ_{n, bands} dy · colᵀ; db = Σ_{n, i, j} dy.
     */
    static void backward(Parallel par, Geometry g, float[] dy, float[] x, float[] w, float[] dx, float[] dw, float[] db) {
        int hw = g.h() * g.w();
        int ohw = g.outH() * g.outW();
        int band = g.bandRows();
        for (int n = 0; n < g.n(); n++) {
            int xOff = n * g.c() * hw;
            int yOff = n * g.o() * ohw;
            if (g.isPointwise()) {
                if (dw != null) {
                    // dW (O, C) += dy_n (O, HW) · x_nᵀ
                    Gemm.multiply(par, dy, yOff, false, x, xOff, true, dw, 0, g.o(), g.ckk(), ohw, n > 0);
                }
                if (dx != null) {
                    // dx_n (C, HW) = Wᵀ (C, O) · dy_n (O, HW)
                    Gemm.multiply(par, w, 0, true, dy, yOff, false, dx, xOff, g.ckk(), ohw, g.o(), false);
                }
                continue;
            }
            float[] col = dw != null ? par.workspace().floats(SLOT_COL, g.ckk() * band * g.outW()) : null;
            float[] dcol = dx != null ? par.workspace().floats(SLOT_DCOL, g.ckk() * band * g.outW()) : null;
            if (dx != null) {
                Arrays.fill(dx, xOff, xOff + g.c() * hw, 0f);
            }
            for (int i0 = 0; i0 < g.outH(); i0 += band) {
                int rows = Math.min(band, g.outH() - i0);
                int cols = rows * g.outW();
                int dyAt = yOff + i0 * g.outW();
                if (dw != null) {
                    im2col(par, g, x, xOff, i0, rows, col);
                    // dW (O, CKK) += dy band (O, cols; rows ohw apart) · colᵀ (cols, CKK)
                    Gemm.multiply(par, dy, dyAt, ohw, 1, col, 0, 1, cols, dw, 0, g.ckk(), g.o(), g.ckk(), cols,
                            n > 0 || i0 > 0);
                }
                if (dx != null) {
                    // dcol (CKK, cols) = Wᵀ (CKK, O) · dy band (O, cols)
                    Gemm.multiply(par, w, 0, 1, g.ckk(), dy, dyAt, ohw, 1, dcol, 0, cols, g.ckk(), cols, g.o(), false);
                    col2im(par, g, dcol, dx, xOff, i0, rows);
                }
            }
        }
        if (db != null) {
            for (int o = 0; o < g.o(); o++) {
                double s = 0;
                for (int n = 0; n < g.n(); n++) {
                    int at = (n * g.o() + o) * ohw;
                    for (int i = 0; i < ohw; i++) {
                        s += dy[at + i];
                    }
                }
                db[o] = (float) s;
            }
        }
    }

    /** Fills col (CKK, rows·Wo) for output rows [i0, i0+rows) of the image at {@code xOff}. */
    static void im2col(Parallel par, Geometry g, float[] x, int xOff, int i0, int rows, float[] col) {
        int ow = g.outW();
        int k = g.k();
        int cols = rows * ow;
        par.forRange(g.c(), 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                for (int u = 0; u < k; u++) {
                    for (int v = 0; v < k; v++) {
                        int row = ((c * k + u) * k + v) * cols;
                        // columns j whose input column j·s + v - p lies inside the image
                        int j0 = Math.min(ow, Math.max(0, ceilDiv(g.pad() - v, g.stride())));
                        int j1 = Math.max(j0, Math.min(ow, ceilDiv(g.w() + g.pad() - v, g.stride())));
                        for (int r = 0; r < rows; r++) {
                            int hi = (i0 + r) * g.stride() + u - g.pad();
                            int at = row + r * ow;
                            if (hi < 0 || hi >= g.h()) {
                                Arrays.fill(col, at, at + ow, 0f);
                                continue;
                            }
                            int src = xOff + (c * g.h() + hi) * g.w() + v - g.pad();
                            Arrays.fill(col, at, at + j0, 0f);
                            if (g.stride() == 1) {
                                System.arraycopy(x, src + j0, col, at + j0, j1 - j0);
                            } else {
                                for (int j = j0; j < j1; j++) {
                                    col[at + j] = x[src + j * g.stride()];
                                }
                            }
                            Arrays.fill(col, at + j1, at + ow, 0f);
                        }
                    }
                }
            }
        });
    }

    /** Adds dcol (CKK, rows·Wo) of output rows [i0, i0+rows) onto the image of dx at {@code dxOff}. */
    static void col2im(Parallel par, Geometry g, float[] dcol, float[] dx, int dxOff, int i0, int rows) {
        int ow = g.outW();
        int k = g.k();
        int cols = rows * ow;
        par.forRange(g.c(), 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                int plane = dxOff + c * g.h() * g.w();
                for (int u = 0; u < k; u++) {
                    for (int v = 0; v < k; v++) {
                        int row = ((c * k + u) * k + v) * cols;
                        for (int r = 0; r < rows; r++) {
                            int hi = (i0 + r) * g.stride() + u - g.pad();
                            if (hi < 0 || hi >= g.h()) {
                                continue;
                            }
                            int dst = plane + hi * g.w();
                            int at = row + r * ow;
                            for (int j = 0; j < ow; j++) {
                                int wj = j * g.stride() + v - g.pad();
                                if (wj >= 0 && wj < g.w()) {
                                    dx[dst + wj] += dcol[at + j];
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    private static int ceilDiv(int a, int b) {
        return -Math.floorDiv(-a, b);
    }
}
