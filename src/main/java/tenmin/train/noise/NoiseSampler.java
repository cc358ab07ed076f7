package tenmin.train.noise;

import tenmin.train.Rng;

/**
 * The random inputs of one training micro-batch (trainer-spec §5.2): Gaussian noise, optionally with
 * multires ("pyramid") noise, a noise offset or input perturbation ({@link NoiseOptions}), and uniform integer
 * timesteps. Tensors are float[] in NCHW layout.
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

    /** The target noise, the timesteps and the model's input of one micro-batch. */
    public record Noised(float[] noise, int[] timesteps, float[] noisy) {
    }

    /**
     * kohya's {@code get_noise_noisy_latents_and_timesteps} on the scaled latents {@code x0} (N, C, h, w): the
     * training noise ε ({@link #training}), then the timesteps, then — with input perturbation — the strength
     * ({@code U(0,1)·γ} with random strength, else γ) and {@code N(0,1)} of the latents' shape, and
     * {@code x_t = add_noise(x0, ε + strength·N(0,1), t)}; the target stays ε. Without it
     * {@code x_t = add_noise(x0, ε, t)}. Drawn from {@code rng} in that order.
     */
    public static Noised noised(Rng rng, float[] x0, int n, int c, int h, int w, NoiseOptions options, int minTimestep,
                                int maxTimestep, DdpmSchedule schedule) {
        float[] noise = training(rng, x0, n, c, h, w, options);
        int[] t = timesteps(rng, n, minTimestep, maxTimestep);
        float[] input = noise;
        if (options.ipGamma() > 0) {
            float strength = options.ipRandomStrength() ? rng.nextFloat() * (float) options.ipGamma()
                    : (float) options.ipGamma();
            float[] perturbation = gaussian(rng, n, c, h, w);
            input = new float[noise.length];
            for (int i = 0; i < input.length; i++) {
                input[i] = noise[i] + strength * perturbation[i];
            }
        }
        float[] noisy = new float[x0.length];
        schedule.addNoiseInto(noisy, x0, input, t);
        return new Noised(noise, t, noisy);
    }

    /**
     * The training noise ε of one micro-batch on the scaled latents {@code x0} (N, C, h, w): N(0,1), then the noise
     * offset when it is set ({@link #offsetStrengths}, {@link #offsetInPlace}), then pyramid noise when its
     * iterations are — both when both are set (the reference's check that forbade the pair is commented out), the
     * pyramid's final division by the std then covering the offset too.
     */
    public static float[] training(Rng rng, float[] x0, int n, int c, int h, int w, NoiseOptions options) {
        float[] noise = gaussian(rng, n, c, h, w);                              // (N, C, h, w)
        if (options.offset() > 0) {
            offsetInPlace(noise, n, c, h, w, offsetStrengths(rng, x0, n, c, h, w, options), rng);
        }
        if (options.multiresIterations() > 0) {
            pyramidInPlace(noise, n, c, h, w, options.multiresIterations(), options.multiresDiscount(), rng);
        }
        return noise;
    }

    /**
     * The offset strength of each (image, channel) of kohya's {@code apply_noise_offset}: the offset, times
     * {@code U(0,1)} (one draw) with random strength; with an adaptive scale a, plus {@code a·|mean_{h,w}(x0)|}
     * of the channel, clamped at 0.
     */
    static float[] offsetStrengths(Rng rng, float[] x0, int n, int c, int h, int w, NoiseOptions options) {
        float base = options.offsetRandomStrength() ? rng.nextFloat() * (float) options.offset()
                : (float) options.offset();
        float[] s = new float[n * c];
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++) {
            if (options.adaptiveScale() == null) {
                s[nc] = base;
                continue;
            }
            double sum = 0;
            for (int i = nc * plane; i < (nc + 1) * plane; i++) {
                sum += x0[i];
            }
            float mean = Math.abs((float) (sum / plane));
            s[nc] = Math.max(0f, base + options.adaptiveScale().floatValue() * mean);
        }
        return s;
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

    /** kohya's {@code apply_noise_offset}: {@code noise += strength[n,c] · N(0,1)[N,C,1,1]}. */
    public static void offsetInPlace(float[] noise, int n, int c, int h, int w, float[] strengths, Rng rng) {
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++) {
            float o = strengths[nc] * (float) rng.nextGaussian();
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
