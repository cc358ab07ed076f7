package tenmin.train.noise;

import tenmin.train.Rng;

/**
 * The random inputs of one training micro-batch (trainer-spec §5.2): Gaussian noise, optionally with
 * multires ("pyramid") noise or a noise offset, and uniform integer timesteps. Tensors are float[] in
 * NCHW layout.
 */
public final class NoiseSampler {
    private NoiseSampler() {
    }

    /** One timestep per sample, uniform in [minTimestep, maxTimestep) (defaults 0 and 1000). */
    public static int[] timesteps(Rng rng, int batch, int minTimestep, int maxTimestep) {
        if (minTimestep < 0 || maxTimestep <= minTimestep) {
            throw new IllegalArgumentException("timestep range [" + minTimestep + ", " + maxTimestep + ") is empty");
        }
        int[] t = new int[batch];
        for (int i = 0; i < batch; i++) {
            t[i] = rng.nextInt(minTimestep, maxTimestep);
        }
        return t;
    }

    /**
     * The training noise of one micro-batch (kohya {@code get_noise_noisy_latents_and_timesteps}): N(0,1), then
     * the noise offset when {@code offset > 0}, then pyramid noise when {@code iterations > 0} — both when both
     * are set (the reference's check that forbade the pair is commented out), the pyramid's final division by
     * the std then covering the offset too.
     */
    public static float[] training(Rng rng, int n, int c, int h, int w, double offset, int iterations,
                                   double discount) {
        float[] noise = gaussian(rng, n, c, h, w);                              // (N, C, h, w)
        if (offset > 0) {
            offsetInPlace(noise, n, c, h, w, offset, rng);
        }
        if (iterations > 0) {
            pyramidInPlace(noise, n, c, h, w, iterations, discount, rng);
        }
        return noise;
    }

    /** N(0,1) of shape (n, c, h, w). */
    public static float[] gaussian(Rng rng, int n, int c, int h, int w) {
        float[] out = new float[Math.multiplyExact(Math.multiplyExact(n, c), Math.multiplyExact(h, w))];
        rng.fillGaussian(out);
        return out;
    }

    /**
     * kohya's {@code pyramid_noise_like}: for i = 0, 1, ...: r = U(2, 4), h' = max(1, ⌊H/rⁱ⌋), w' likewise;
     * {@code noise += bilinear(N(0,1)[N,C,h',w'] → (H,W)) · discountⁱ}; stop after {@code iterations} or once
     * h' or w' reaches 1; finally divide by the unbiased std of the whole batch tensor (one value).
     *
     * @return the number of levels added (for logs and tests)
     */
    public static int pyramidInPlace(float[] noise, int n, int c, int h, int w, int iterations, double discount, Rng rng) {
        int levels = 0;
        for (int i = 0; i < iterations; i++) {
            double r = rng.uniform(2, 4);
            double scale = Math.pow(r, i);
            int hn = Math.max(1, (int) (h / scale));
            int wn = Math.max(1, (int) (w / scale));
            float[] small = gaussian(rng, n, c, hn, wn);
            float weight = (float) Math.pow(discount, i);
            Resample.bilinearAddInto(noise, small, n * c, hn, wn, h, w, weight);
            levels++;
            if (hn == 1 || wn == 1) {
                break;
            }
        }
        double std = std(noise);
        float inv = (float) std;
        for (int i = 0; i < noise.length; i++) {
            noise[i] /= inv;
        }
        return levels;
    }

    /** kohya's {@code apply_noise_offset} without adaptive scale: {@code noise += offset · N(0,1)[N,C,1,1]}. */
    public static void offsetInPlace(float[] noise, int n, int c, int h, int w, double offset, Rng rng) {
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++) {
            float o = (float) (offset * rng.nextGaussian());
            for (int i = nc * plane; i < (nc + 1) * plane; i++) {
                noise[i] += o;
            }
        }
    }

    /** Unbiased standard deviation over all values (double accumulation). */
    public static double std(float[] a) {
        double mean = 0;
        for (float v : a) {
            mean += v;
        }
        mean /= a.length;
        double ss = 0;
        for (float v : a) {
            double d = v - mean;
            ss += d * d;
        }
        return Math.sqrt(ss / (a.length - 1));
    }
}
