package tenmin.testing;

import tenmin.formats.SafetensorsFile;

/**
 * The delta of one LoRA module computed the plain way, in double, for tests: {@code (alpha/r)·up@down} with
 * {@code up} flattened to {@code [out, r]} and {@code down} to {@code [r, in·k·k]} (for convs this is the
 * conv weight {@code [out, in, k, k]} flattened), read straight from the file's tensors.
 */
public final class DenseDelta {
    private DenseDelta() {
    }

    /** Row-major {@code [out, in·k·k]}; {@code rows()} is {@code out}. */
    public record Delta(double[] values, int rows, int cols) {
        public float[] toFloats() {
            float[] f = new float[values.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) values[i];
            }
            return f;
        }

        public double frobenius() {
            double s = 0;
            for (double v : values) {
                s += v * v;
            }
            return Math.sqrt(s);
        }
    }

    public static Delta of(SafetensorsFile f, String module) {
        float[] up = f.readFloats(module + ".lora_up.weight");
        float[] down = f.readFloats(module + ".lora_down.weight");
        int r = (int) f.info(module + ".lora_down.weight").dim(0);
        double scale = f.readScalar(module + ".alpha") / r;
        int rows = up.length / r;
        int cols = down.length / r;
        double[] d = new double[rows * cols];
        for (int o = 0; o < rows; o++) {
            for (int c = 0; c < cols; c++) {
                double s = 0;
                for (int j = 0; j < r; j++) {
                    s += (double) up[o * r + j] * down[j * cols + c];
                }
                d[o * cols + c] = scale * s;
            }
        }
        return new Delta(d, rows, cols);
    }
}
