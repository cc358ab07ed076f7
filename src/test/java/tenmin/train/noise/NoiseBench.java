package tenmin.train.noise;

import java.util.Arrays;
import java.util.Locale;

import tenmin.train.Rng;

/**
 * The host's share of drawing a micro-batch's inputs: the recipe's multires noise for 8 latents of 1024x1024
 * (8×4×128×128, 12 pyramid levels, discount 0.4), which the trainer now draws on a worker thread while the device
 * runs the micro-batch before ({@code InputPrefetch}). A benchmark, not a test; run by hand:
 *
 * <pre>
 * scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
 *     -cp target/classes:target/test-classes tenmin.train.noise.NoiseBench
 * </pre>
 */
public final class NoiseBench {
    private NoiseBench() {
    }

    public static void main(String[] args) {
        double[] ms = new double[15];
        for (int k = 0; k < ms.length; k++) {
            long t0 = System.nanoTime();
            NoiseSampler.training(new Rng(k), null, 8, 4, 128, 128, NoiseOptions.multires(12, 0.4));
            ms[k] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        System.out.printf(Locale.ROOT, "multires noise 8x4x128x128, 12 levels: median %.1f ms, min %.1f ms (%d runs)%n",
                ms[ms.length / 2], ms[0], ms.length);
    }
}
