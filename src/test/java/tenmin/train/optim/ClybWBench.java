package tenmin.train.optim;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The host optimizer step of the recipe (ClybW over LoCon-shaped parameters), in nanoseconds per value: the
 * share of a training micro-batch that no GPU speeds up (on the H100 machine of 2026-11-26: 300 ms per step for the
 * recipe's 120 million values, 16 vCPUs). A benchmark, not a test; run by hand:
 *
 * <pre>
 * scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
 *     [-Djava.util.concurrent.ForkJoinPool.common.parallelism=1] \
 *     -cp target/classes:target/test-classes tenmin.train.optim.ClybWBench [millions of values, default 24]
 * </pre>
 */
public final class ClybWBench {
    private ClybWBench() {
    }

    public static void main(String[] args) {
        long want = (long) (args.length > 0 ? Double.parseDouble(args[0]) : 24) * 1_000_000L;
        // the recipe's mix: rank-256 conv downs (256 rows of C·9), their 1x1 ups (O rows of 256), rank-8 linears
        long[][] shapes = {{256, 5760}, {640, 256}, {8, 1280}, {1280, 8}, {256, 11520}, {1280, 256}, {8, 640}, {640, 8}};
        List<Param> params = new ArrayList<>();
        SplittableRandom rng = new SplittableRandom(1);
        long total = 0;
        for (int i = 0; total < want; i++) {
            long[] shape = shapes[i % shapes.length];
            int n = (int) (shape[0] * shape[1]);
            float[] v = new float[n];
            for (int k = 0; k < n; k++) {
                v[k] = (float) (rng.nextGaussian() * 0.02);
            }
            params.add(new Param("p" + i, shape, v));
            total += n;
        }
        ClybW opt = new ClybW(ClybW.Hyper.CLYBW);
        List<ParamGroup> groups = List.of(new ParamGroup("all", 3e-4, params));
        double[] lrs = {3e-4};
        int runs = 7;
        double[] ms = new double[runs];
        for (int r = -3; r < runs; r++) {
            for (Param p : params) {
                float[] g = p.grad();
                for (int k = 0; k < g.length; k++) {
                    g[k] = (float) rng.nextGaussian();
                }
                p.markGrad();
            }
            long t0 = System.nanoTime();
            opt.step(groups, lrs);
            long t1 = System.nanoTime();
            if (r >= 0) {
                ms[r] = (t1 - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        System.out.printf(Locale.ROOT, "ClybW step over %,d values in %d tensors, %d threads: median %.1f ms"
                + " (%.2f ns per value; min %.1f, max %.1f)%n", total, params.size(),
                java.util.concurrent.ForkJoinPool.getCommonPoolParallelism(), ms[runs / 2], ms[runs / 2] * 1e6 / total,
                ms[0], ms[runs - 1]);
    }
}
