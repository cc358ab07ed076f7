package tenmin.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextConfig;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.sdxl.UnetConfig;
import tenmin.models.vae.VaeConfig;
import tenmin.train.optim.GradClip;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.Optimizers;
import tenmin.train.optim.ParamGroup;

/**
 * Training throughput of the loop's steps on the CPU backend (a benchmark, not a test; run by hand):
 * images per second through text encoders, U-Net forward and backward with the LoCon network, and the
 * host-side optimizer step (gradient download, clip, ClybW, upload), for the tiny configuration (the demo's)
 * and a mid-sized SDXL-shaped one. Warm-up steps first, then the median of timed optimizer steps.
 *
 * <pre>
 * scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
 *     -cp target/classes:target/test-classes:$(cat target/classpath.txt) tenmin.train.TrainBench [threads]
 * </pre>
 */
public final class TrainBench {
    private TrainBench() {
    }

    /** A mid-sized SDXL-shaped model: 128-channel U-Net (SDXL's depth pattern, fewer blocks), 256-wide text encoders. */
    static SdxlConfig mid() {
        UnetConfig unet = new UnetConfig(4, 4, 128, List.of(1, 2, 4), 2, List.of(4, 2), List.of(0, 2, 4), 4, 64, 512, 1792);
        ClipTextConfig te1 = new ClipTextConfig(49408, 256, 6, 4, 1024, 77, ClipTextConfig.Activation.QUICK_GELU, 1e-5, 0);
        ClipTextConfig te2 = new ClipTextConfig(49408, 256, 6, 4, 1024, 77, ClipTextConfig.Activation.GELU, 1e-5, 256);
        VaeConfig vae = new VaeConfig(32, new int[] {1, 2, 4, 4}, 1, 4, 4, true, 3, 3, 64, new int[0]);
        return new SdxlConfig(unet, te1, te2, vae);
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        System.out.printf(Locale.ROOT, "cpu backend, %d threads, Java %s%n", threads, Runtime.version());
        run("tiny (demo), 128x128, batch 2 x accumulation 2", SdxlConfig.tiny(), new LoConRanks(4, 2, 8, 4), 128, 2, 2,
                threads, 3, 7);
        run("mid, 256x256, batch 2 x accumulation 2", mid(), new LoConRanks(8, 4, 32, 4), 256, 2, 2, threads, 1, 3);
    }

    private static void run(String name, SdxlConfig config, LoConRanks ranks, int side, int batch, int accumulation,
                            int threads, int warmup, int timed) {
        try (CpuBackend backend = new CpuBackend(threads); Scope root = Scope.root(backend, "bench");
             SdxlModels models = SdxlModels.random(config, root, SdxlDtypes.fp32(), 1)) {
            TrainableNetwork net = TrainableNetwork.create(models, ranks, LoConPreset.TextEncoderModules.FULL, true, true,
                    1e-4, 3e-4, root.child("locon"), 1);
            Optimizer opt = Optimizers.create("ClybW", java.util.Map.of());
            int lat = side / config.vaeScale();
            Rng rng = new Rng(3);
            List<Double> stepSeconds = new ArrayList<>();
            List<Double> hostSeconds = new ArrayList<>();
            for (int step = 0; step < warmup + timed; step++) {
                long start = System.nanoTime();
                for (int m = 0; m < accumulation; m++) {
                    Trainer.forwardBackward(models, root, inputs(rng, batch, lat), PooledProjection.SAI, false,
                            accumulation, bytes -> { });
                }
                long host = System.nanoTime();
                net.gradientsToHost();
                GradClip.clip(net.groups(), 1.0);
                double[] lrs = new double[net.groups().size()];
                Arrays.fill(lrs, 1e-4);
                List<ParamGroup> groups = net.groups();
                opt.step(groups, lrs);
                net.valuesToDevice();
                net.clearHostGradients();
                long end = System.nanoTime();
                if (step >= warmup) {
                    stepSeconds.add((end - start) / 1e9);
                    hostSeconds.add((end - host) / 1e9);
                }
            }
            double median = median(stepSeconds);
            System.out.printf(Locale.ROOT, "%-50s %,12d LoCon values: %.2f s per optimizer step (host part %.3f s),"
                            + " %.2f images/s%n", name, net.parameterCount(), median, median(hostSeconds),
                    batch * accumulation / median);
        }
    }

    private static BatchInputs inputs(Rng rng, int n, int lat) {
        int per = 4 * lat * lat;
        float[] noisy = new float[n * per];
        float[] noise = new float[n * per];
        rng.fillGaussian(noisy);
        rng.fillGaussian(noise);
        int[] t = new int[n];
        List<String> captions = new ArrayList<>();
        List<int[]> sizes = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            t[i] = rng.nextInt(1000);
            captions.add("ohwx shape, red circle, white background, masterpiece, best quality");
            sizes.add(new int[] {lat * 8, lat * 8, 0, 0, lat * 8, lat * 8});
        }
        return new BatchInputs(n, 4, lat, lat, noisy, noise, t, captions, sizes);
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        return s.get(s.size() / 2);
    }
}
