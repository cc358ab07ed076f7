package tenmin.engine.backend.cpu;

import java.util.Arrays;

/**
 * 2-D convolution as im2col + GEMM, forward and backward.
 *
 * <p>Legend: N batch, C input channels, O output channels, H/W input size, Ho/Wo output size,
 * k kernel size, s stride, p zero padding, CKK = C·k·k. For one image, {@code col} (CKK, Ho·Wo) holds
 * {@code x[c, i·s + u - p, j·s + v - p]} at row (c, u, v), column (i, j) (0 outside the image), so
 * {@code y = W (O, CKK) · col + b}. A 1x1 convolution with stride 1 and no padding is a GEMM on x
 * itself.
 */
final class Convolution {
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
    }

    private Convolution() {
    }

    /** y (N, O, Ho, Wo) = conv(x (N, C, H, W), w (O, C, k, k)) + bias (O) or null. */
    static void forward(Parallel par, Geometry g, float[] x, float[] w, float[] bias, float[] y) {
        int hw = g.h() * g.w();
        int ohw = g.outH() * g.outW();
        float[] col = g.isPointwise() ? null : new float[g.ckk() * ohw];
        for (int n = 0; n < g.n(); n++) {
            float[] src = x;
            int srcOff = n * g.c() * hw;
            if (col != null) {
                im2col(par, g, x, srcOff, col);
                src = col;
                srcOff = 0;
            }
            int yOff = n * g.o() * ohw;
            Gemm.multiply(par, w, 0, false, src, srcOff, false, y, yOff, g.o(), ohw, g.ckk(), false);
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
     * dx = col2im(Wᵀ · dy); dW = Σ_n dy · colᵀ; db = Σ_{n, i, j} dy.
     */
    static void backward(Parallel par, Geometry g, float[] dy, float[] x, float[] w, float[] dx, float[] dw, float[] db) {
        int hw = g.h() * g.w();
        int ohw = g.outH() * g.outW();
        boolean pointwise = g.isPointwise();
        float[] col = !pointwise && dw != null ? new float[g.ckk() * ohw] : null;
        float[] dcol = !pointwise && dx != null ? new float[g.ckk() * ohw] : null;
        for (int n = 0; n < g.n(); n++) {
            int xOff = n * g.c() * hw;
            int yOff = n * g.o() * ohw;
            if (dw != null) {
                float[] src = x;
                int srcOff = xOff;
                if (col != null) {
                    im2col(par, g, x, xOff, col);
                    src = col;
                    srcOff = 0;
                }
                // dW (O, CKK) += dy_n (O, OHW) · col_nᵀ
                Gemm.multiply(par, dy, yOff, false, src, srcOff, true, dw, 0, g.o(), g.ckk(), ohw, n > 0);
            }
            if (dx != null) {
                // dcol (CKK, OHW) = Wᵀ (CKK, O) · dy_n (O, OHW)
                if (dcol == null) {
                    Gemm.multiply(par, w, 0, true, dy, yOff, false, dx, xOff, g.ckk(), ohw, g.o(), false);
                } else {
                    Gemm.multiply(par, w, 0, true, dy, yOff, false, dcol, 0, g.ckk(), ohw, g.o(), false);
                    col2im(par, g, dcol, dx, xOff);
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

    /** Fills col (CKK, Ho·Wo) from image n of x starting at {@code xOff}. */
    static void im2col(Parallel par, Geometry g, float[] x, int xOff, float[] col) {
        int oh = g.outH();
        int ow = g.outW();
        int k = g.k();
        par.forRange(g.c(), 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                for (int u = 0; u < k; u++) {
                    for (int v = 0; v < k; v++) {
                        int row = ((c * k + u) * k + v) * oh * ow;
                        for (int i = 0; i < oh; i++) {
                            int hi = i * g.stride() + u - g.pad();
                            int at = row + i * ow;
                            if (hi < 0 || hi >= g.h()) {
                                Arrays.fill(col, at, at + ow, 0f);
                                continue;
                            }
                            int src = xOff + (c * g.h() + hi) * g.w();
                            for (int j = 0; j < ow; j++) {
                                int wj = j * g.stride() + v - g.pad();
                                col[at + j] = wj >= 0 && wj < g.w() ? x[src + wj] : 0f;
                            }
                        }
                    }
                }
            }
        });
    }

    /** Adds dcol (CKK, Ho·Wo) back onto image n of dx (overwriting it: dx starts at zero here). */
    static void col2im(Parallel par, Geometry g, float[] dcol, float[] dx, int dxOff) {
        int oh = g.outH();
        int ow = g.outW();
        int k = g.k();
        par.forRange(g.c(), 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                int plane = dxOff + c * g.h() * g.w();
                Arrays.fill(dx, plane, plane + g.h() * g.w(), 0f);
                for (int u = 0; u < k; u++) {
                    for (int v = 0; v < k; v++) {
                        int row = ((c * k + u) * k + v) * oh * ow;
                        for (int i = 0; i < oh; i++) {
                            int hi = i * g.stride() + u - g.pad();
                            if (hi < 0 || hi >= g.h()) {
                                continue;
                            }
                            int dst = plane + hi * g.w();
                            int at = row + i * ow;
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
}
