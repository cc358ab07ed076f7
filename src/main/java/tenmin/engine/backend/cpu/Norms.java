package tenmin.engine.backend.cpu;

/**
 * Group and layer normalisation, forward and backward, with statistics in double.
 *
 * <p>Both are one kernel over "rows": a row is the M elements normalised together (a group of
 * C/G channels × spatial for group norm, the last dimension for layer norm). {@code channelOf}
 * maps an element's position in its row to the index of its gamma/beta. Legend: N batch, C
 * channels, G groups, S spatial size, R rows, M row length.
 */
final class Norms {
    private Norms() {
    }

    /** Where the affine parameter of element {@code j} of row {@code r} sits. */
    interface ChannelMap {
        int channel(int row, int j);
    }

    /** Group norm rows: row r = (n, g); element j of the row belongs to channel g·C/G + j / S. */
    static ChannelMap groupChannels(int groups, int channels, int spatial) {
        int perGroup = channels / groups;
        return (row, j) -> (row % groups) * perGroup + j / spatial;
    }

    /** Layer norm rows: element j is channel j. */
    static ChannelMap lastDimChannels() {
        return (row, j) -> j;
    }

    /**
     * {@code y = (x - mean) · rstd · gamma + beta} per row; writes mean and rstd (R) for the backward.
     * gamma/beta may be null.
     */
    static void forward(Parallel par, float[] x, int rows, int m, float[] gamma, float[] beta, ChannelMap map,
                        double eps, float[] y, float[] mean, float[] rstd) {
        par.forRange(rows, 1, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int off = r * m;
                double sum = 0;
                for (int j = 0; j < m; j++) {
                    sum += x[off + j];
                }
                double mu = sum / m;
                double sq = 0;
                for (int j = 0; j < m; j++) {
                    double d = x[off + j] - mu;
                    sq += d * d;
                }
                double rs = 1.0 / Math.sqrt(sq / m + eps);
                mean[r] = (float) mu;
                rstd[r] = (float) rs;
                for (int j = 0; j < m; j++) {
                    double v = (x[off + j] - mu) * rs;
                    if (gamma != null) {
                        v *= gamma[map.channel(r, j)];
                    }
                    if (beta != null) {
                        v += beta[map.channel(r, j)];
                    }
                    y[off + j] = (float) v;
                }
            }
        });
    }

    /**
     * Input gradient per row, with {@code x̂ = (x - mean) rstd} and {@code g = dy · gamma}:
     * {@code dx = rstd · (g - mean(g) - x̂ · mean(g · x̂))}.
     */
    static void backwardInput(Parallel par, float[] dy, float[] x, int rows, int m, float[] mean, float[] rstd,
                              float[] gamma, ChannelMap map, float[] dx) {
        par.forRange(rows, 1, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int off = r * m;
                double mu = mean[r];
                double rs = rstd[r];
                double sumG = 0;
                double sumGX = 0;
                for (int j = 0; j < m; j++) {
                    double g = gamma != null ? dy[off + j] * gamma[map.channel(r, j)] : dy[off + j];
                    double xh = (x[off + j] - mu) * rs;
                    sumG += g;
                    sumGX += g * xh;
                }
                double meanG = sumG / m;
                double meanGX = sumGX / m;
                for (int j = 0; j < m; j++) {
                    double g = gamma != null ? dy[off + j] * gamma[map.channel(r, j)] : dy[off + j];
                    double xh = (x[off + j] - mu) * rs;
                    dx[off + j] = (float) (rs * (g - meanG - xh * meanGX));
                }
            }
        });
    }

    /**
     * Parameter gradients: {@code dGamma[c] = Σ dy · x̂}, {@code dBeta[c] = Σ dy} over every element of
     * channel c, summed in row order (either output may be null).
     */
    static void backwardParams(float[] dy, float[] x, int rows, int m, float[] mean, float[] rstd, ChannelMap map,
                               int channels, float[] dGamma, float[] dBeta) {
        double[] g = new double[channels];
        double[] b = new double[channels];
        for (int r = 0; r < rows; r++) {
            int off = r * m;
            double mu = mean[r];
            double rs = rstd[r];
            for (int j = 0; j < m; j++) {
                int c = map.channel(r, j);
                g[c] += dy[off + j] * (x[off + j] - mu) * rs;
                b[c] += dy[off + j];
            }
        }
        for (int c = 0; c < channels; c++) {
            if (dGamma != null) {
                dGamma[c] = (float) g[c];
            }
            if (dBeta != null) {
                dBeta[c] = (float) b[c];
            }
        }
    }
}
