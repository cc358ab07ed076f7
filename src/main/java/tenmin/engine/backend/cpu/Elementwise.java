package tenmin.engine.backend.cpu;

import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.DType;
import tenmin.engine.api.Shape;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;

/**
 * Elementwise kernels: broadcasting binary ops, unary functions, activations and their backward,
 * and rounding to the storage precision of bf16/fp16.
 *
 * <p>Arithmetic is fp32 (transcendental functions through double); every loop is a plain indexed
 * loop that C2 vectorises where it can.
 */
final class Elementwise {
    private Elementwise() {
    }

    /** Binary operations with broadcasting. */
    enum Binary { ADD, MUL, DIV }

    // ---- broadcasting --------------------------------------------------------------------------

    /** Element strides of {@code in} read as {@code out} (0 along broadcast dimensions). */
    static int[] broadcastStrides(Shape in, Shape out) {
        int rank = out.rank();
        int[] strides = new int[rank];
        int stride = 1;
        for (int i = rank - 1; i >= 0; i--) {
            int j = i - (rank - in.rank());
            int d = j >= 0 ? in.dim(j) : 1;
            strides[i] = d == 1 ? 0 : stride;
            stride *= d;
        }
        return strides;
    }

    /**
     * {@code out = a (op) alpha·b} over {@code outShape} with broadcast strides {@code sa}, {@code sb};
     * alpha applies to ADD only. The innermost dimension runs as a tight loop.
     */
    static void binary(Binary op, float[] a, int[] sa, float[] b, int[] sb, float alpha, float[] out, Shape outShape) {
        int rank = outShape.rank();
        if (rank == 0) {
            out[0] = apply(op, a[0], b[0], alpha);
            return;
        }
        int inner = outShape.dim(rank - 1);
        int ia = sa[rank - 1];
        int ib = sb[rank - 1];
        int outer = (int) (outShape.numel() / Math.max(1, inner));
        int[] idx = new int[rank];
        int offA = 0;
        int offB = 0;
        for (int o = 0; o < outer; o++) {
            int base = o * inner;
            switch (op) {
                case ADD -> {
                    for (int j = 0; j < inner; j++) {
                        out[base + j] = a[offA + j * ia] + alpha * b[offB + j * ib];
                    }
                }
                case MUL -> {
                    for (int j = 0; j < inner; j++) {
                        out[base + j] = a[offA + j * ia] * b[offB + j * ib];
                    }
                }
                case DIV -> {
                    for (int j = 0; j < inner; j++) {
                        out[base + j] = a[offA + j * ia] / b[offB + j * ib];
                    }
                }
            }
            // advance the outer multi-index (dimensions 0..rank-2)
            for (int d = rank - 2; d >= 0; d--) {
                idx[d]++;
                offA += sa[d];
                offB += sb[d];
                if (idx[d] < outShape.dim(d)) {
                    break;
                }
                offA -= sa[d] * idx[d];
                offB -= sb[d] * idx[d];
                idx[d] = 0;
            }
        }
    }

    private static float apply(Binary op, float x, float y, float alpha) {
        return switch (op) {
            case ADD -> x + alpha * y;
            case MUL -> x * y;
            case DIV -> x / y;
        };
    }

    /** Copies {@code in} broadcast to {@code outShape}. */
    static void expand(float[] in, Shape inShape, float[] out, Shape outShape) {
        int[] s = broadcastStrides(inShape, outShape);
        binary(Binary.ADD, in, s, new float[] {0f}, new int[outShape.rank()], 0f, out, outShape);
    }

    // ---- unary and activations -----------------------------------------------------------------

    static void unary(Unary op, float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            double v = x[i];
            y[i] = (float) switch (op) {
                case EXP -> Math.exp(v);
                case LOG -> Math.log(v);
                case SQRT -> Math.sqrt(v);
                case RSQRT -> 1.0 / Math.sqrt(v);
                case SQUARE -> v * v;
                case NEG -> -v;
                case ABS -> Math.abs(v);
                case SIGN -> Math.signum(v);
                case SIGMOID -> sigmoid(v);
                case TANH -> Math.tanh(v);
                case SIN -> Math.sin(v);
                case COS -> Math.cos(v);
            };
        }
    }

    static void affine(float[] x, float scale, float shift, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            y[i] = x[i] * scale + shift;
        }
    }

    static void clamp(float[] x, float min, float max, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            y[i] = Math.min(Math.max(x[i], min), max);
        }
    }

    static double sigmoid(double v) {
        return 1.0 / (1.0 + Math.exp(-v));
    }

    static void silu(float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            y[i] = (float) (x[i] * sigmoid(x[i]));
        }
    }

    static void siluBackward(float[] dy, float[] x, float[] dx, int n) {
        for (int i = 0; i < n; i++) {
            double s = sigmoid(x[i]);
            dx[i] = (float) (dy[i] * s * (1 + x[i] * (1 - s)));
        }
    }

    private static final double SQRT_HALF = Math.sqrt(0.5);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2 * Math.PI);
    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double GELU_TANH_C = 0.044715;

    static void gelu(float[] x, float[] y, int n, GeluApproximation approx) {
        for (int i = 0; i < n; i++) {
            double v = x[i];
            y[i] = (float) (approx == GeluApproximation.NONE
                    ? v * 0.5 * (1 + erf(v * SQRT_HALF))
                    : 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_TANH_C * v * v * v))));
        }
    }

    static void geluBackward(float[] dy, float[] x, float[] dx, int n, GeluApproximation approx) {
        for (int i = 0; i < n; i++) {
            double v = x[i];
            double d;
            if (approx == GeluApproximation.NONE) {
                d = 0.5 * (1 + erf(v * SQRT_HALF)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
            } else {
                double t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_TANH_C * v * v * v));
                d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * v * v);
            }
            dx[i] = (float) (dy[i] * d);
        }
    }

    private static final double QUICK_GELU_K = 1.702;

    static void quickGelu(float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            y[i] = (float) (x[i] * sigmoid(QUICK_GELU_K * x[i]));
        }
    }

    static void quickGeluBackward(float[] dy, float[] x, float[] dx, int n) {
        for (int i = 0; i < n; i++) {
            double s = sigmoid(QUICK_GELU_K * x[i]);
            dx[i] = (float) (dy[i] * (s + QUICK_GELU_K * x[i] * s * (1 - s)));
        }
    }

    /**
     * The error function: {@code 1 - erfc(|x|)} with erfc from the Chebyshev fit of Numerical Recipes
     * (2nd ed., §6.2, {@code erfcc}: fractional error below 1.2e-7 everywhere), evaluated in double.
     */
    static double erf(double x) {
        double z = Math.abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277))))))));
        double erfc = t * Math.exp(poly);
        return x >= 0 ? 1.0 - erfc : erfc - 1.0;
    }

    // ---- storage precision ---------------------------------------------------------------------

    /** Rounds {@code n} values to the precision of {@code dtype} in place (no-op for F32). */
    static void round(float[] a, int n, DType dtype) {
        switch (dtype) {
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    a[i] = Half.bf16ToF32(Half.f32ToBf16(a[i]));
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    a[i] = Float.float16ToFloat(Float.floatToFloat16(a[i]));
                }
            }
            case F8_E4M3 -> {
                for (int i = 0; i < n; i++) {
                    a[i] = Fp8E4m3.round(a[i]);
                }
            }
            case F32, I64 -> {
            }
        }
    }
}
