package tenmin.models.vae;

import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import tenmin.core.Stats;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.OpTimes;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.models.nn.RandomParams;

/**
 * {@code tenmin bench vae}: the VAE in fp32 (the recipe's {@code --no_half_vae}) with random weights, as the trainer
 * and the sampler use it: the latent caching's encode of one image (upload, encoder, posterior sample, latents back
 * to the host; twice per image with flip augmentation) and the sampler's decode of one latent (decoder, image back to
 * the host). Median wall time of each after warm-up, with the host's share: the time to issue the ops before the
 * result is read back, then the wait for the device. A benchmark, not a test.
 */
public final class VaeBenchmark {
    /** Rows of each op-times table. */
    private static final int OP_TIME_ROWS = 25;

    private VaeBenchmark() {
    }

    /**
     * What to measure.
     *
     * @param config      the VAE's sizes
     * @param width       image pixels (a multiple of 8)
     * @param height      image pixels
     * @param warmup      untimed runs of each
     * @param runs        timed runs of each (median)
     * @param cudaProfile the last timed encode is the region of {@code ncu --profile-from-start off}
     */
    public record Config(VaeConfig config, int width, int height, int warmup, int runs, boolean cudaProfile) {
    }

    /**
     * Medians in milliseconds.
     *
     * @param label        "encode" or "decode"
     * @param millis       wall time of one call, result on the host
     * @param issueMillis  host time until the read-back starts (on a GPU the device runs meanwhile)
     * @param waitMillis   the read-back's wait for the device (near 0: host-bound)
     */
    public record Result(String label, double millis, double issueMillis, double waitMillis) {
        /** One line for the report. */
        public String line() {
            return String.format(Locale.ROOT, "%s: %.1f ms (host: %.1f ms issuing, then %.1f ms waiting for the device)",
                    label, millis, issueMillis, waitMillis);
        }
    }

    /** Throws {@link IllegalArgumentException} naming the options when the size does not suit the VAE. */
    public static void checkSize(VaeConfig config, int width, int height) {
        int f = config.downsampleFactor();
        if (width < f || height < f || width % f != 0 || height % f != 0) {
            throw new IllegalArgumentException("bench vae: --width " + width + " and --height " + height
                    + " must be positive multiples of " + f);
        }
    }

    /** Builds the VAE on {@code backend} and measures encode, then decode. */
    public static List<Result> run(Backend backend, Config c) {
        return run(backend, c, null, line -> { });
    }

    /**
     * As {@link #run(Backend, Config)}; with {@code opTimes} (whose wrapper {@code backend} is), one more encode and
     * one more decode are timed op by op and their tables given to {@code opTimeLines}.
     */
    public static List<Result> run(Backend backend, Config c, OpTimes opTimes, Consumer<String> opTimeLines) {
        checkSize(c.config(), c.width(), c.height());
        int f = c.config().downsampleFactor();
        try (Scope root = Scope.root(backend, "bench vae")) {
            Vae vae = new Vae(RandomParams.of(VaeKeys.PREFIX, root, DType.F32, 0), c.config());
            SplittableRandom rng = new SplittableRandom(1);
            float[] image = new float[3 * c.width() * c.height()];
            for (int i = 0; i < image.length; i++) {
                image[i] = (float) (rng.nextDouble() * 2 - 1);
            }
            float[] latent = new float[c.config().embedDim() * (c.width() / f) * (c.height() / f)];
            for (int i = 0; i < latent.length; i++) {
                latent[i] = (float) rng.nextGaussian();
            }
            Shape imageShape = Shape.of(1, 3, c.height(), c.width());
            Shape latentShape = Shape.of(1, c.config().embedDim(), c.height() / f, c.width() / f);
            Call encodeCall = s -> vae.encode(s, s.fromHost(image, imageShape, DType.F32)).sample(s, new Generator(3));
            Result encode = time("encode 1x3x" + c.height() + "x" + c.width() + " (fp32, posterior sample, to host)", c,
                    root, true, encodeCall);
            Call decodeCall = s -> vae.decode(s, s.fromHost(latent, latentShape, DType.F32));
            Result decode = time("decode 1x" + c.config().embedDim() + "x" + latentShape.dim(2) + "x" + latentShape.dim(3)
                    + " (fp32, to host)", c, root, false, decodeCall);
            if (opTimes != null) {
                opTimes(root, opTimes, "encode", encodeCall, opTimeLines);
                opTimes(root, opTimes, "decode", decodeCall, opTimeLines);
            }
            return List.of(encode, decode);
        }
    }

    /** A call issuing the work in {@code s} and returning its result tensor (the caller reads it back). */
    private interface Call {
        Tensor issue(Scope s);
    }

    /** One more {@code call} timed op by op; its table to {@code lines}. */
    private static void opTimes(Scope root, OpTimes opTimes, String label, Call call, Consumer<String> lines) {
        root.backend().synchronize();
        opTimes.start(label);
        try (Scope s = root.child("op times")) {
            call.issue(s).toHost();
        }
        OpTimes.Table t = opTimes.stop();
        lines.accept(String.format(Locale.ROOT, "op times of one %s (device time from the end of the op before: %.1f ms"
                + " in all; the %d ops that took the most):", label, t.deviceMillis(), OP_TIME_ROWS));
        t.lines(OP_TIME_ROWS).forEach(lines);
    }

    private static Result time(String label, Config c, Scope root, boolean profile, Call call) {
        Backend backend = root.backend();
        double[] total = new double[c.runs()];
        double[] issue = new double[c.runs()];
        double[] wait = new double[c.runs()];
        for (int i = 0; i < c.warmup() + c.runs(); i++) {
            boolean profiled = profile && c.cudaProfile() && i == c.warmup() + c.runs() - 1;
            backend.synchronize();
            if (profiled) {
                backend.profilerRegion(true);
            }
            long t0 = System.nanoTime();
            long t1;
            long t2;
            try (Scope s = root.child(label)) {
                Tensor out = call.issue(s);
                t1 = System.nanoTime();
                out.toHost();
                t2 = System.nanoTime();
            }
            if (profiled) {
                backend.profilerRegion(false);
            }
            if (i >= c.warmup()) {
                int k = i - c.warmup();
                total[k] = (t2 - t0) / 1e6;
                issue[k] = (t1 - t0) / 1e6;
                wait[k] = (t2 - t1) / 1e6;
            }
        }
        return new Result(label, Stats.median(total), Stats.median(issue), Stats.median(wait));
    }

}
