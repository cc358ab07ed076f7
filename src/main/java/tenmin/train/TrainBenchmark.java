package tenmin.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import tenmin.core.Reporter;
import tenmin.core.Stats;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.OpStats;
import tenmin.engine.api.OpTimes;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.meta.MetaBackend;
import tenmin.lora.LoConDropout;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.train.optim.DeviceClybW;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.Optimizers;
import tenmin.train.optim.ParamGroup;
import tenmin.train.save.StateTensor;

/**
 * {@code tenmin bench train}: the trainer's micro-batch ({@link Trainer#forwardBackward}: text encoders, U-Net
 * forward, fp32 MSE loss, backward into the LoCon gradients) on a model built in memory with random weights, and
 * the optimizer step the recipe runs every {@code accumulation} micro-batches (on the device where the trainer runs it
 * there). A benchmark, not a test.
 *
 * <p>Two parts. {@link #plan}: the same micro-batch on the shape-only {@link MetaBackend} counted by
 * {@link OpStats}, which gives, before anything is allocated, the tensor storage by category and at its peak, the
 * ops and host transfers, and the FLOPs of the matrix-unit ops (recomputation of checkpointed blocks included,
 * since it runs as issued). {@link #measure}: the micro-batch on a real backend, timed (median after warm-up,
 * each run synchronized), with the peak of tensor storage ({@link Backend#peakLiveBytes()}), the device memory the
 * driver reports, and the backend's matrix-product rate in the compute dtype measured in the same run, against
 * which the plan's FLOPs give the utilisation.
 */
public final class TrainBenchmark {
    /** Learning rates of the benchmark's optimizer steps (the values do not change the time). */
    private static final double UNET_LR = 1e-4;
    /** Rows of the op-times table ({@code --op-times}). */
    private static final int OP_TIME_ROWS = 40;
    private static final double TE_LR = 5e-5;
    /** A long caption: every micro-batch encodes full 77-token contexts (BOS, 75 tokens, EOS). */
    private static final String CAPTION = String.join(", ", java.util.Collections.nCopies(40,
            "ohwx woman, red coat, city street at night"));

    private TrainBenchmark() {
    }

    /**
     * What to measure.
     *
     * @param modelName     label of the model configuration ({@code sdxl}, {@code tiny}, a file name)
     * @param model         the four networks' sizes
     * @param dtypes        frozen weights and activations per network
     * @param batch         images per micro-batch
     * @param latentHeight  latent rows (image height / 8)
     * @param latentWidth   latent columns
     * @param checkpointing U-Net blocks recomputed in the backward (text encoders are checkpointed unless this is none)
     * @param trainTe       LoCon modules on both text encoders (trained: their backward runs too)
     * @param ranks         LoCon ranks and alphas (the recipe: linear 8/4, conv 256/4)
     * @param teModules     which text-encoder layers preset full wraps
     * @param accumulation  micro-batches per optimizer step (0: no optimizer step)
     * @param seed          weights, LoCon and inputs
     * @param dropout       the LoCon's dropout while training (its masks and bypass branches count in the plan)
     */
    public record Setup(String modelName, SdxlConfig model, SdxlDtypes dtypes, int batch, int latentHeight,
                        int latentWidth, CheckpointPolicy checkpointing, boolean trainTe, LoConRanks ranks,
                        LoConPreset.TextEncoderModules teModules, int accumulation, long seed, LoConDropout dropout) {
        /** The recipe's LoCon: dim 8 alpha 4 for linear and 1x1 layers, conv_dim 256 conv_alpha 4 for 3x3. */
        public static final LoConRanks RECIPE_RANKS = new LoConRanks(8, 4, 256, 4);
        /** The recipe's gradient accumulation. */
        public static final int RECIPE_ACCUMULATION = 6;

        /** A setup without dropout (the recipe's). */
        public Setup(String modelName, SdxlConfig model, SdxlDtypes dtypes, int batch, int latentHeight,
                     int latentWidth, CheckpointPolicy checkpointing, boolean trainTe, LoConRanks ranks,
                     LoConPreset.TextEncoderModules teModules, int accumulation, long seed) {
            this(modelName, model, dtypes, batch, latentHeight, latentWidth, checkpointing, trainTe, ranks, teModules,
                    accumulation, seed, LoConDropout.NONE);
        }

        public Setup {
            java.util.Objects.requireNonNull(dropout, "dropout");
            if (batch < 1 || latentHeight < 1 || latentWidth < 1 || accumulation < 0) {
                throw new IllegalArgumentException("batch and latent sizes must be >= 1, accumulation >= 0");
            }
            int m = model.latentMultiple();
            if (latentHeight % m != 0 || latentWidth % m != 0) {
                throw new IllegalArgumentException("latent " + latentHeight + "x" + latentWidth + " is not a multiple of "
                        + m + " (the U-Net's down-sampling)");
            }
        }

        /** The same setup with another checkpointing policy. */
        public Setup withCheckpointing(CheckpointPolicy policy) {
            return new Setup(modelName, model, dtypes, batch, latentHeight, latentWidth, policy, trainTe, ranks, teModules,
                    accumulation, seed, dropout);
        }

        /** Text encoders checkpointed along with the U-Net, as kohya's --gradient_checkpointing does. */
        boolean teCheckpointing() {
            return trainTe && !checkpointing.isNone();
        }

        /** One line: model, LoCon, batch, latents, checkpointing, text encoders. */
        public String describe() {
            return String.format(Locale.ROOT, "%s, LoCon preset full (linear %d/%s, conv %d/%s), batch %d, latents %dx%d"
                            + " (%dx%d images), checkpointing %s, text encoders %s; %s", modelName, ranks.linearDim(),
                    num(ranks.linearAlpha()), ranks.convDim(), num(ranks.convAlpha()), batch, latentHeight, latentWidth,
                    latentHeight * model.vaeScale(), latentWidth * model.vaeScale(), checkpointing,
                    trainTe ? "trained (" + teModules.name().toLowerCase(Locale.ROOT) + " modules)" : "frozen (forward only)",
                    dtypes);
        }

        private static String num(double v) {
            return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
        }
    }

    // ---- the plan: one micro-batch on shapes alone ---------------------------------------------------------

    /**
     * What one micro-batch needs, from a shape-only run.
     *
     * @param weightBytes     frozen weights per network ("unet", "text encoders", "vae")
     * @param loconValues     trainable values
     * @param stepStartBytes  tensor storage held when the micro-batch starts (weights, LoCon values and gradients)
     * @param afterForward    storage the micro-batch adds by the end of its forward (inputs, what is kept for the
     *                        backward, the loss)
     * @param peakBytes       the most storage held at once during the micro-batch, everything included
     * @param forward         ops, transfers and FLOPs of the forward (uploads, text encoders, U-Net, loss, loss download)
     * @param backward        the same for the backward (recomputation of checkpointed blocks included)
     * @param deviceMomentBytes the optimizer's moments when it steps on the device (in {@code stepStartBytes}), else 0
     */
    public record Plan(Setup setup, Map<String, Long> weightBytes, long loconValues, long stepStartBytes,
                       long afterForward, long peakBytes, OpStats.Snapshot forward, OpStats.Snapshot backward,
                       long deviceMomentBytes, long textEncoderCarryBytes) {

        /**
         * The training loop's peak: {@link #peakBytes} (one micro-batch) plus {@link #textEncoderCarryBytes}, one
         * micro-batch's text-encoder tensors, which the loop keeps into the next micro-batch's U-Net forward where
         * it issues their backward ({@code Trainer.TextEncoderBackward}; 0 when that does not happen).
         */
        public long loopPeakBytes() {
            return peakBytes + textEncoderCarryBytes;
        }

        /** FLOPs of one micro-batch (matrix-unit ops, forward and backward). */
        public double flops() {
            return forward.flops() + backward.flops();
        }

        /** Printable lines: {@link #memoryLines()}, then ops, transfers and FLOPs. */
        public List<String> lines() {
            List<String> out = memoryLines();
            out.add(String.format(Locale.ROOT, "  ops per micro-batch: %,d forward + %,d backward; host transfers: %d uploads,"
                            + " %d downloads", forward.ops(), backward.ops(), forward.uploads() + backward.uploads(),
                    forward.downloads() + backward.downloads()));
            out.add("  FLOPs per micro-batch (matmul, conv, attention): forward " + flop(forward.flops()) + " + backward "
                    + flop(backward.flops()) + " (recomputation included) = " + flop(flops()) + ", "
                    + flop(flops() / setup.batch()) + " per image");
            return out;
        }

        /** The tensor storage by category and at its peak. */
        public List<String> memoryLines() {
            List<String> out = new ArrayList<>();
            out.add("plan (a shape-only run of one micro-batch; tensor storage, 1 GiB = 2^30 bytes):");
            StringBuilder w = new StringBuilder("  frozen weights:");
            weightBytes.forEach((k, v) -> w.append(' ').append(k).append(' ').append(gib(v)).append(','));
            w.setLength(w.length() - 1);
            out.add(w.toString());
            out.add(String.format(Locale.ROOT, "  LoCon values and gradients (fp32, %,d values): %s", loconValues,
                    gib(8 * loconValues)));
            if (deviceMomentBytes > 0) {
                out.add("  optimizer moments on the device (fp32): " + gib(deviceMomentBytes));
            }
            out.add("  held after the forward (inputs, kept activations, loss): +" + gib(afterForward));
            out.add("  peak during the backward (largest recomputed block and its gradients): +"
                    + gib(peakBytes - stepStartBytes - afterForward));
            boolean recipe = setup.model().unet().equals(tenmin.models.sdxl.UnetConfig.sdxlBase()) && setup.batch() == 8
                    && setup.latentHeight() == 128 && setup.latentWidth() == 128;
            out.add("  peak total: " + gib(peakBytes) + (recipe ? " (the reference trainer: 15.5 GiB)" : ""));
            if (textEncoderCarryBytes > 0) {
                out.add("  kept into the next micro-batch's U-Net forward (this one's text-encoder tensors, whose backward"
                        + " is issued there): +" + gib(textEncoderCarryBytes) + "; the loop's peak: " + gib(loopPeakBytes()));
            }
            return out;
        }
    }

    /**
     * Runs one micro-batch of {@code setup} on a {@link MetaBackend} standing in for {@code device} (its weights
     * are built on shapes, nothing is stored) and returns the plan. Takes about a second at full SDXL size.
     */
    public static Plan plan(Setup setup, Device device) {
        return plan(setup, device, DeviceClybW.plannedSlots("ClybW", device, setup.accumulation()));
    }

    /** As {@link #plan(Setup, Device)}, with {@code deviceMomentSlots} fp32 buffers per LoCon value held on the device. */
    public static Plan plan(Setup setup, Device device, int deviceMomentSlots) {
        OpStats stats = new OpStats();
        try (MetaBackend meta = new MetaBackend(device)) {
            Backend backend = stats.wrap(meta);
            try (Scope process = Scope.root(backend, "plan")) {
                SdxlModels models = SdxlModels.random(setup.model(), process, setup.dtypes(), setup.seed());
                models.unet().setCheckpointing(setup.checkpointing());
                List<LoConTarget> targets = targets(models, setup);
                LoConNetwork net = LoConNetwork.create(targets, process.child("locon"), new Generator(setup.seed()));
                net.reuseCasts(true);                                   // as TrainableNetwork: copies kept per window
                net.setDropout(setup.dropout());
                long moments = 0;
                for (int i = 0; i < deviceMomentSlots; i++) {
                    Tensor m = process.zeros(Shape.of(Math.toIntExact(net.parameterCount())), DType.F32);
                    moments += m.sizeBytes();
                }
                BatchInputs in = inputs(setup, new SplittableRandom(setup.seed()));
                long start = backend.liveBytes();
                backend.resetPeakLiveBytes();
                stats.reset();
                OpStats.Snapshot[] forward = new OpStats.Snapshot[1];
                long[] afterForward = new long[1];
                Trainer.forwardBackward(models, process, in, PooledProjection.SAI, setup.teCheckpointing(),
                        Math.max(1, setup.accumulation()), bytes -> {
                            afterForward[0] = bytes;
                            forward[0] = stats.snapshot();
                            stats.reset();
                        });
                OpStats.Snapshot backward = stats.snapshot();
                long peak = backend.peakLiveBytes();
                long carry = 0;
                if (setup.trainTe() && setup.accumulation() > 1 && Trainer.PIPELINE.on()) {
                    long before = backend.liveBytes();
                    try (Scope encoders = process.child("text encoders carried")) {
                        models.condition(Functional.training(encoders), in.captions(), in.sizes(), PooledProjection.SAI,
                                setup.teCheckpointing());
                        carry = backend.liveBytes() - before;
                    }
                }
                return new Plan(setup, SdxlModels.plannedWeightBytes(setup.model(), setup.dtypes()), net.parameterCount(),
                        start, afterForward[0], peak, forward[0], backward, moments, carry);
            }
        }
    }

    private static List<LoConTarget> targets(SdxlModels models, Setup setup) {
        return TrainableNetwork.targets(models.unet().layers(), models.unet().moduleClasses(),
                models.textEncoders().te1().adaptableLayers(), models.textEncoders().te2().adaptableLayers(), setup.ranks(),
                setup.teModules(), setup.trainTe(), true);
    }

    /** Random latents, noise and timesteps, the long caption, and 1024x1024-style size conditioning. */
    static BatchInputs inputs(Setup setup, SplittableRandom rng) {
        int c = setup.model().latentChannels();
        int per = c * setup.latentHeight() * setup.latentWidth();
        float[] noisy = new float[setup.batch() * per];
        float[] noise = new float[noisy.length];
        for (int i = 0; i < noisy.length; i++) {
            noise[i] = (float) gaussian(rng);
            noisy[i] = (float) (0.5 * gaussian(rng) + 0.8 * noise[i]);
        }
        int[] t = new int[setup.batch()];
        List<String> captions = new ArrayList<>();
        List<int[]> sizes = new ArrayList<>();
        int h = setup.latentHeight() * setup.model().vaeScale();
        int w = setup.latentWidth() * setup.model().vaeScale();
        for (int b = 0; b < t.length; b++) {
            t[b] = rng.nextInt(1000);
            captions.add(CAPTION);
            sizes.add(new int[] {h, w, 0, 0, h, w});
        }
        return new BatchInputs(setup.batch(), c, setup.latentHeight(), setup.latentWidth(), noisy, noise, t,
                List.copyOf(captions), List.copyOf(sizes), null, null, BatchInputs.PLAIN_TOKENS, null, null,
                setup.dropout().any() ? rng.nextLong() : null);
    }

    private static double gaussian(SplittableRandom rng) {
        double u = 1.0 - rng.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextDouble());
    }

    // ---- the measurement ------------------------------------------------------------------------------------

    /**
     * What one run measured.
     *
     * @param medianMillis      median wall time of one micro-batch (synchronized)
     * @param minMillis         fastest micro-batch
     * @param maxMillis         slowest timed micro-batch
     * @param optimizerMillis   mean optimizer step (on the device: clip, ClybW, values down for the save; on the host:
     *                          gradients down, clip, ClybW, values up), NaN when not run
     * @param peakLiveBytes     peak tensor storage during the timed micro-batches (weights included)
     * @param deviceUsedBytes   device memory in use after the runs as the driver reports it (context, libtorch's
     *                          caching allocator with its cache, workspaces), or -1 where there is none
     * @param deviceBaseBytes   the same before the models were built, or -1
     * @param matmulFlops       the backend's measured matrix-product rate in the compute dtype (FLOP/s)
     * @param matmulSize        the square size it was measured at
     * @param buildMillis       building the random models and the LoCon
     * @param forwardIssueMillis median host time to issue the forward (on a GPU the device runs meanwhile; the loss is
     *                          read right after, which waits for the forward)
     * @param tailWaitMillis    median wait for the device after the host has issued the whole backward: near zero
     *                          means the host's per-op cost, not the device, sets the pace
     * @param optimizerPhases   the optimizer step's phases in words (empty when not run)
     */
    public record Measurement(Plan plan, int warmup, int runs, double medianMillis, double minMillis, double maxMillis,
                              double optimizerMillis, long peakLiveBytes, long deviceUsedBytes, long deviceBaseBytes,
                              double matmulFlops, int matmulSize, double buildMillis, double forwardIssueMillis,
                              double tailWaitMillis, String optimizerPhases, List<String> opTimeLines) {

        public double imagesPerSecond() {
            return plan.setup().batch() * 1000.0 / medianMillis;
        }

        /** Milliseconds per micro-batch with the optimizer step shared over the accumulation window. */
        public double recipeMillis() {
            int acc = plan.setup().accumulation();
            return acc == 0 || Double.isNaN(optimizerMillis) ? medianMillis : medianMillis + optimizerMillis / acc;
        }

        /** Achieved FLOP/s of the micro-batch over the measured matrix rate. */
        public double utilisation() {
            return plan.flops() / (medianMillis / 1000.0) / matmulFlops;
        }

        /** Printable lines. */
        public List<String> lines() {
            List<String> out = new ArrayList<>();
            out.add(String.format(Locale.ROOT, "measured (median of %d micro-batches after %d warm-up, each synchronized):",
                    runs, warmup));
            out.add(String.format(Locale.ROOT, "  building the random models and the LoCon: %.1f s", buildMillis / 1000));
            out.add(String.format(Locale.ROOT, "  matrix products %d^3 in %s: %s/s", matmulSize,
                    plan.setup().dtypes().unet().shortName(), flop(matmulFlops)));
            out.add(String.format(Locale.ROOT, "  micro-batch: %.1f ms (min %.1f, max %.1f), %.2f images/s", medianMillis,
                    minMillis, maxMillis, imagesPerSecond()));
            out.add(String.format(Locale.ROOT, "  host: %.1f ms to issue the forward's %,d ops; the device still had %.1f ms"
                            + " of work when the host had issued the backward's %,d (near 0: the host sets the pace)",
                    forwardIssueMillis, plan.forward().ops(), tailWaitMillis, plan.backward().ops()));
            if (!Double.isNaN(optimizerMillis)) {
                out.add(String.format(Locale.ROOT, "  optimizer step every %d micro-batches: %.1f ms -> %.1f ms"
                        + " per micro-batch in the recipe, %.2f images/s (%s)", plan.setup().accumulation(),
                        optimizerMillis, recipeMillis(), plan.setup().batch() * 1000.0 / recipeMillis(), optimizerPhases));
            }
            out.add(String.format(Locale.ROOT, "  utilisation: %.1f %% (%s/s achieved of %s/s measured)",
                    100 * utilisation(), flop(plan.flops() / (medianMillis / 1000.0)), flop(matmulFlops)));
            out.add(String.format(Locale.ROOT, "  peak tensor storage: %s (plan: %s)", gib(peakLiveBytes), gib(plan.peakBytes())));
            if (deviceUsedBytes >= 0) {
                out.add(String.format(Locale.ROOT, "  device memory in use (driver, cudaMemGetInfo): %s after the runs,"
                        + " %s before the models (CUDA context); the difference, %s, is libtorch's caching allocator"
                        + " (tensors, its cache, kernel workspaces)", gib(deviceUsedBytes), gib(deviceBaseBytes),
                        gib(deviceUsedBytes - deviceBaseBytes)));
            }
            out.addAll(opTimeLines);
            return out;
        }

        /** One Markdown table row for docs/PERFORMANCE.md. */
        public String tableRow(String device) {
            Setup s = plan.setup();
            return String.format(Locale.ROOT, "| %s | %s | %s | %s | %.0f | %.2f | %s | %.1f %% | %s |", device,
                    s.modelName() + " b" + s.batch() + " " + s.latentHeight() + "x" + s.latentWidth(), s.checkpointing(),
                    s.trainTe() ? "trained" : "frozen", medianMillis, imagesPerSecond(),
                    Double.isNaN(optimizerMillis) ? "-" : String.format(Locale.ROOT, "%.0f", recipeMillis()),
                    100 * utilisation(), gib(Math.max(peakLiveBytes, deviceUsedBytes - Math.max(0, deviceBaseBytes))));
        }
    }

    /**
     * Builds the models of {@code plan}'s setup on {@code backend}, runs {@code warmup} micro-batches and times
     * {@code runs} more, times two optimizer steps when the setup accumulates, and measures the matrix rate.
     *
     * @param deviceMemory (free, total) bytes of the device as the driver reports them, or null on the host
     * @param cudaProfile   the last timed micro-batch is the region of {@code ncu --profile-from-start off}
     *                      ({@link Backend#profilerRegion})
     */
    public static Measurement measure(Backend backend, Plan plan, int warmup, int runs, Supplier<long[]> deviceMemory,
                                      boolean cudaProfile, Reporter reporter) {
        return measure(backend, plan, warmup, runs, deviceMemory, cudaProfile, null, reporter);
    }

    /**
     * As above; with {@code opTimes} (whose wrapper {@code backend} is, or contains), one more micro-batch after the
     * timed ones is timed op by op (forward and backward), and its table ends the measurement's lines.
     */
    public static Measurement measure(Backend backend, Plan plan, int warmup, int runs, Supplier<long[]> deviceMemory,
                                      boolean cudaProfile, OpTimes opTimes, Reporter reporter) {
        Setup setup = plan.setup();
        long deviceBase = used(deviceMemory);
        long buildStart = System.nanoTime();
        try (Scope process = Scope.root(backend, "bench train")) {
            SdxlModels models = SdxlModels.random(setup.model(), process, setup.dtypes(), setup.seed());
            models.unet().setCheckpointing(setup.checkpointing());
            TrainableNetwork net = TrainableNetwork.create(models, setup.ranks(), setup.teModules(), setup.trainTe(), true,
                    TE_LR, UNET_LR, process.child("locon"), setup.seed());
            net.network().setDropout(setup.dropout());
            SplittableRandom rng = new SplittableRandom(setup.seed() + 1);
            nonZeroUp(net, rng);   // as after a few steps: never time on zeros
            BatchInputs in = inputs(setup, rng);
            backend.synchronize();
            double buildMillis = (System.nanoTime() - buildStart) / 1e6;

            boolean teCp = setup.teCheckpointing();
            int acc = Math.max(1, setup.accumulation());
            try (Reporter.Progress bar = reporter.progress("bench train", (long) warmup + runs)) {
                for (int i = 0; i < warmup; i++) {
                    Trainer.forwardBackward(models, process, in, PooledProjection.SAI, teCp, acc, bytes -> { });
                    backend.synchronize();
                    bar.advance(1);
                }
                backend.resetPeakLiveBytes();
                double[] millis = new double[runs];
                double[] forwardIssue = new double[runs];
                double[] tailWait = new double[runs];
                for (int i = 0; i < runs; i++) {
                    boolean profiled = cudaProfile && i == runs - 1;
                    if (profiled) {
                        backend.profilerRegion(true);
                    }
                    long t0 = System.nanoTime();
                    long[] forwardIssued = new long[1];
                    Tensor loss = Trainer.forwardBackwardIssued(models, process, in, PooledProjection.SAI, teCp, acc,
                            bytes -> forwardIssued[0] = System.nanoTime());
                    long backwardIssued = System.nanoTime();                        // before the loss read waits
                    try (loss) {
                        loss.item();
                    }
                    backend.synchronize();                                          // the whole micro-batch is done
                    long done = System.nanoTime();
                    if (profiled) {
                        backend.profilerRegion(false);
                    }
                    millis[i] = (done - t0) / 1e6;
                    forwardIssue[i] = (forwardIssued[0] - t0) / 1e6;
                    tailWait[i] = (done - backwardIssued) / 1e6;
                    bar.advance(1);
                }
                List<String> opTimeLines = List.of();
                if (opTimes != null) {
                    backend.synchronize();
                    opTimes.start("forward");
                    Trainer.forwardBackward(models, process, in, PooledProjection.SAI, teCp, acc,
                            bytes -> opTimes.phase("backward"));
                    OpTimes.Table t = opTimes.stop();
                    List<String> lines = new ArrayList<>();
                    lines.add(String.format(Locale.ROOT, "op times (one more micro-batch, each op's device time from the"
                            + " end of the op before: %.1f ms in all; the %d ops that took the most):", t.deviceMillis(),
                            OP_TIME_ROWS));
                    lines.addAll(t.lines(OP_TIME_ROWS));
                    opTimeLines = List.copyOf(lines);
                }
                double optimizer = Double.NaN;
                String phases = "";
                if (setup.accumulation() > 0) {
                    Optimizer clybw = Optimizers.create("ClybW", Map.of());
                    if (DeviceClybW.enabled() && net.optimizeOnDevice(clybw, process.child("optimizer"))) {
                        optimizer = deviceOptimizerMillis(backend, net, () -> Trainer.forwardBackward(models, process, in,
                                PooledProjection.SAI, teCp, acc, bytes -> { }));
                        phases = "on the device: clip and ClybW over " + net.deviceOptimizer().numel() + " values";
                    } else {
                        long[] phaseNanos = new long[4];
                        optimizer = optimizerMillis(backend, net, clybw, phaseNanos);
                        phases = String.format(Locale.ROOT, "on the host: gradients down %.1f ms, clip %.1f ms, update"
                                + " %.1f ms, values up %.1f ms", phaseNanos[0] / 2e6, phaseNanos[1] / 2e6,
                                phaseNanos[2] / 2e6, phaseNanos[3] / 2e6);
                    }
                }
                // after the optimizer steps: a device optimizer's moments count, as the reference's do
                long peak = backend.peakLiveBytes();
                long deviceUsed = used(deviceMemory);
                double[] sorted = millis.clone();
                Arrays.sort(sorted);
                DType compute = setup.dtypes().unet();
                int size = backend.device().kind() == Device.Kind.CUDA ? 8192 : 512;
                double rate = matmulRate(backend, compute, size);
                return new Measurement(plan, warmup, runs, sorted[runs / 2], sorted[0], sorted[runs - 1], optimizer, peak,
                        deviceUsed, deviceBase, rate, size, buildMillis, Stats.median(forwardIssue),
                        Stats.median(tailWait), phases, opTimeLines);
            }
        }
    }


    private static long used(Supplier<long[]> deviceMemory) {
        long[] m = deviceMemory == null ? null : deviceMemory.get();
        return m == null ? -1 : m[1] - m[0];
    }

    /** Gives every up matrix small uniform values (host copy and device) so no product runs on zeros. */
    private static void nonZeroUp(TrainableNetwork net, SplittableRandom rng) {
        List<StateTensor> weights = new ArrayList<>();
        for (StateTensor t : net.weights()) {
            float[] v = t.values().clone();
            if (t.name().endsWith(".lora_up.weight")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (rng.nextDouble(-1, 1) * 1e-3);
                }
            }
            weights.add(new StateTensor(t.name(), t.shape(), v));
        }
        net.restore(weights, "bench train");
    }

    /**
     * Mean of two host optimizer steps (clip 1.0) after an untimed first one (which allocates the moments);
     * the two steps' phases are added to {@code phases} (see {@link Trainer#hostOptimizerStep}).
     */
    private static double optimizerMillis(Backend backend, TrainableNetwork net, Optimizer optimizer, long[] phases) {
        double[] lrs = baseLrs(net);
        double total = 0;
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            long[] p = i > 0 ? phases : new long[4];
            Trainer.hostOptimizerStep(net, optimizer, 1.0, lrs, p);
            backend.synchronize();
            if (i > 0) {
                total += (System.nanoTime() - t0) / 1e6;
            }
        }
        return total / 2;
    }

    /**
     * Mean of two device optimizer steps (clip 1.0; {@link TrainableNetwork#deviceStep}) after an untimed first one,
     * each on the gradients of a micro-batch ({@code microBatch} runs one before the second and third: a step zeroes
     * them) and with the download of the values that the recipe's save after every step needs.
     */
    private static double deviceOptimizerMillis(Backend backend, TrainableNetwork net, Runnable microBatch) {
        double[] lrs = baseLrs(net);
        double total = 0;
        for (int i = 0; i < 3; i++) {
            if (i > 0) {
                microBatch.run();
            }
            backend.synchronize();
            long t0 = System.nanoTime();
            net.deviceStep(lrs, 1.0);
            net.valuesToHost();
            backend.synchronize();
            if (i > 0) {
                total += (System.nanoTime() - t0) / 1e6;
            }
        }
        return total / 2;
    }

    private static double[] baseLrs(TrainableNetwork net) {
        List<ParamGroup> groups = net.groups();
        double[] lrs = new double[groups.size()];
        for (int g = 0; g < lrs.length; g++) {
            lrs[g] = groups.get(g).baseLr();
        }
        return lrs;
    }

    /**
     * The backend's rate for {@code size}³ products of random matrices in {@code dtype}: median of 10 synchronized
     * products after 3 warm-up ones, each product in its own scope.
     */
    public static double matmulRate(Backend backend, DType dtype, int size) {
        try (Scope s = Scope.root(backend, "matmul rate")) {
            Generator gen = new Generator(7);
            Tensor a = s.randn(Shape.of(size, size), dtype, gen);
            Tensor b = s.randn(Shape.of(size, size), dtype, gen);
            double[] ms = new double[10];
            for (int i = -3; i < ms.length; i++) {
                try (Scope it = s.child("product")) {
                    backend.synchronize();
                    long t0 = System.nanoTime();
                    backend.matmul(it, a, b, false, false);
                    backend.synchronize();
                    if (i >= 0) {
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                }
            }
            Arrays.sort(ms);
            return 2.0 * size * size * (double) size / (ms[ms.length / 2] / 1000.0);
        }
    }

    /** {@code 12.34 GiB}, or {@code 123.4 MiB} below 1 GiB. */
    public static String gib(long bytes) {
        return Math.abs(bytes) >= 1L << 30 ? String.format(Locale.ROOT, "%.2f GiB", bytes / 1073741824.0)
                : String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    /** {@code 196.02 TFLOP} or {@code 12.3 GFLOP} (append {@code /s} for rates). */
    public static String flop(double flops) {
        return flops >= 1e12 ? String.format(Locale.ROOT, "%.2f TFLOP", flops / 1e12)
                : String.format(Locale.ROOT, "%.2f GFLOP", flops / 1e9);
    }
}
