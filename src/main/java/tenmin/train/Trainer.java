package tenmin.train;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongConsumer;

import tenmin.core.Reporter;
import tenmin.core.Switch;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.autograd.Randomness;
import tenmin.lora.LoConNetwork;
import tenmin.lora.TemporaryMerge;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.train.data.EpochPlanner.MicroBatch;
import tenmin.train.log.LossRecorder;
import tenmin.train.noise.LossFunction;
import tenmin.train.optim.GradClip;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.ParamGroup;
import tenmin.train.save.OutputNames;
import tenmin.train.save.TrainingState;

/**
 * The training loop of the "10 Minute SDXL LoRA" recipe (trainer-spec §2), one method you can read top to
 * bottom ({@link #train}) calling named steps. {@link TrainSetup} prepares everything the loop uses (data,
 * models, latent cache, LoCon network, optimizer, logs, samples, saves, the resume point).
 *
 * <p>Per micro-batch: the host draws its inputs ({@link BatchInputs}), the device runs the text encoders
 * and the U-Net forward, the fp32 MSE loss and the backward of {@code loss / accumulation}; at the end of the
 * window the LoCon gradients are clipped globally and the optimizer steps with the scheduled learning rates:
 * on the device where it can ({@link TrainableNetwork#optimizeOnDevice}: ClybW on the torch backend), else the
 * gradients go to the host, the host optimizer steps and the new values go back. TensorBoard scalars are written every
 * micro-batch; samples and saves follow their cadences; a final save ends the run.
 *
 * <p>Stopping: {@link #requestStop} (Ctrl-C) finishes the current micro-batch and saves the LoRA and a
 * training state as of the last optimizer step (a partial accumulation window is dropped and replayed on
 * resume). A non-finite loss or gradient norm stops the run without updating the weights; the last save
 * stays the good one. On the CPU backend a resumed run reproduces the uninterrupted one bit for bit: every
 * random draw is derived from the seed and the position, and the state holds the exact fp32 weights,
 * optimizer moments and loss record.
 */
public final class Trainer {

    /**
     * What the loop needs from outside.
     *
     * @param backend  where the models run
     * @param reporter log lines and progress
     * @param clock    wall time (file names, metadata)
     * @param version  tenmin's version (metadata)
     */
    public record Environment(Backend backend, Reporter reporter, Clock clock, String version) {
    }

    /** How a run ended. */
    public enum Outcome {
        /** Every step done and the final LoRA written. */
        COMPLETED,
        /** Stopped on request; the LoRA and state of the last optimizer step were saved. */
        STOPPED,
        /** A NaN or infinite loss or gradient; nothing was saved for it. */
        DIVERGED
    }

    /**
     * @param outcome      how it ended
     * @param steps        optimizer steps done
     * @param lastLora     the last LoRA file written (null: none)
     * @param lastState    the training state beside it (null: none)
     * @param message      one line for the user
     * @param losses       the loss of every micro-batch this process ran, in order
     * @param montage      the sample montage (null: none)
     * @param outputs      what went where: label → path
     * @param timings      wall time per phase
     */
    public record Result(Outcome outcome, long steps, Path lastLora, Path lastState, String message, List<Float> losses,
                         Path montage, Map<String, Path> outputs, Timings timings) {
    }

    /**
     * Wall time of a run by phase, in seconds (issue 5's recipe benchmark): setup (data scan, model load or
     * build, network, hashing), latent caching, training (micro-batches and optimizer steps), sampling (sample
     * images and the montage), saving (LoRA files and resume states); the phases add up to the total.
     */
    public record Timings(double setup, double caching, double training, double sampling, double saving, double total,
                          double lossWait, double optimizer, double savingWait, double savingStates,
                          double samplingMerge, double samplingRender, double samplingFiles) {
        /** One line: {@code setup 1.2 s, latent caching 3.4 s, ...; total 9.9 s}. */
        public String line() {
            return String.format(Locale.ROOT, "setup %.1f s, latent caching %.1f s, training %.1f s, sampling %.1f s,"
                    + " saving %.1f s; total %.1f s", setup, caching, training, sampling, saving, total);
        }

        /**
         * Where the training phase's time went on the loop's thread: waiting for the device at the loss reads and the
         * optimizer steps. A short wait does not mean that the host sets the pace: on a GPU, a full launch queue
         * holds the host back inside the ops it issues long before a loss read would (the ninth session's H100 run:
         * 0.1 s of waits, while {@code bench train --op-times} had the device behind the host); that table says which.
         */
        public String trainingLine() {
            return String.format(Locale.ROOT, "training %.1f s: the loop's thread waited %.1f s for the device at the"
                    + " loss reads; optimizer steps %.1f s", training, lossWait, optimizer);
        }

        /**
         * Where the saving phase's time went on the loop's thread: waiting for the writer thread to finish the save
         * before (a save every step that takes longer than a step shows here), writing resume states (synchronous),
         * and the rest (each save's copy of the values, its metadata).
         */
        public String savingLine() {
            return String.format(Locale.ROOT, "saving %.1f s: waiting for the writer thread %.1f s, resume states %.1f s,"
                    + " the rest (the values' copies, metadata) %.1f s", saving, savingWait, savingStates,
                    Math.max(0, saving - savingWait - savingStates));
        }

        /**
         * Where the sampling phase's time went: merging the LoCon into copies of the weights and back (the host's
         * share; the device's merges are waited for in the rendering), rendering (prompts, denoising, decoding, until
         * the image is on the host), the image files and TensorBoard, and the rest (the montage at the end).
         */
        public String samplingLine() {
            return String.format(Locale.ROOT, "sampling %.1f s: merging the LoCon %.1f s, rendering %.1f s, PNG files and"
                    + " TensorBoard %.1f s, the rest (the montage) %.1f s", sampling, samplingMerge, samplingRender,
                    samplingFiles, Math.max(0, sampling - samplingMerge - samplingRender - samplingFiles));
        }
    }

    /** Where the loop stands at an optimizer step: what a training state records to resume from. */
    record ResumePoint(long globalStep, int epoch, int nextBatch, float[] lossWindow, double lossTotal) {
    }

    private final TrainConfig requested;
    private final Environment env;
    private final AtomicBoolean stopRequested = new AtomicBoolean();

    // Set up by run(); the loop's moving parts.
    private TrainSetup run;
    private long globalStep;
    private LossRecorder losses;
    private ResumePoint lastSync;
    private final List<Float> lossHistory = new ArrayList<>();
    private long runStartNanos;
    private long setupNanos;
    private long samplingNanos;
    /** The part of {@link #samplingNanos} outside the samples' rendering and files: merging the LoCon and back. */
    private long samplingMergeNanos;
    private long savingNanos;
    /** Time the loop's thread spent in the loss reads (waiting for the device), and in optimizer steps. */
    private long lossWaitNanos;
    private long optimizerNanos;
    /** The last optimizer step's max-norm pass, logged with its micro-batch (kohya logs 0s for the others). */
    private TrainableNetwork.MaxNorm maxNorm = TrainableNetwork.MaxNorm.NONE;
    private final Progress progress = new Progress();
    /** Whether sampling rounds merge the LoCon ({@link #mergedForSampling}); null until the first round. */
    private Boolean mergeSamples;
    /**
     * Whether a micro-batch's loss is read after the next micro-batch of its accumulation window is issued
     * ({@link Pending}): on unless {@link #OVERLAP_PROPERTY} or else {@link #OVERLAP_ENV} is {@code 0}.
     */
    private final boolean overlap = new Switch(OVERLAP_PROPERTY, OVERLAP_ENV).on();
    /**
     * Whether a micro-batch's text-encoder backward is issued after the next micro-batch's U-Net forward within an
     * accumulation window ({@link TextEncoderBackward}): on unless {@link #PIPELINE_PROPERTY} or else
     * {@link #PIPELINE_ENV} is {@code 0}.
     */
    private final boolean pipelineTextEncoders = PIPELINE.on();
    /** Environment variable: {@code 0} issues each micro-batch's text-encoder backward right after its U-Net's. */
    public static final String PIPELINE_ENV = "TENMIN_TE_PIPELINE";
    /** System property overriding {@link #PIPELINE_ENV} (tests). */
    public static final String PIPELINE_PROPERTY = "tenmin.tePipeline";
    /** {@link #pipelineTextEncoders}'s switch (the training plan asks it too). */
    static final Switch PIPELINE = new Switch(PIPELINE_PROPERTY, PIPELINE_ENV);
    /** The last micro-batch's text-encoder backward while it waits for the next micro-batch (null otherwise). */
    private TextEncoderBackward textEncoderBackward;
    /** Environment variable: {@code 0} reads every micro-batch's loss before the next is issued. */
    public static final String OVERLAP_ENV = "TENMIN_OVERLAP";
    /** System property overriding {@link #OVERLAP_ENV} (tests). */
    public static final String OVERLAP_PROPERTY = "tenmin.overlap";

    /** Tests: force ({@code true}) or forbid merged sampling; null decides by device and memory. */
    static volatile Boolean mergeSamplesForTests;
    /** Free device memory kept beside the merged copies for the sampling step's activations. */
    private static final long SAMPLING_HEADROOM_BYTES = 2L << 30;

    public Trainer(TrainConfig config, Environment env) {
        this.requested = config;
        this.env = env;
    }

    /** Asks the loop to stop after the current micro-batch, saving first (thread-safe; the Ctrl-C hook calls it). */
    public void requestStop() {
        stopRequested.set(true);
    }

    /** Runs the whole recipe: setup, the loop, the final save. */
    public Result run() throws IOException {
        runStartNanos = System.nanoTime();
        try (Scope process = Scope.root(env.backend(), "process");
             TrainSetup setup = TrainSetup.open(requested, env, process)) {
            run = setup;
            setupNanos = System.nanoTime() - runStartNanos - setup.cachingNanos();
            globalStep = setup.start().globalStep();
            losses = new LossRecorder(setup.start().lossWindow(), setup.start().lossTotal());
            lastSync = setup.start();
            return train(setup.start());
        }
    }

    /** trainer-spec §2, from the first micro-batch (or the resume point) to the final save. */
    private Result train(ResumePoint start) throws IOException {
        try {
            return loop(start);
        } finally {
            dropTextEncoderBackward();
        }
    }

    private Result loop(ResumePoint start) throws IOException {
        if (start.globalStep() == 0 && requested.sample().atFirst()) {
            // the reference passes epoch 0 for the samples before training, so they are named e000000_...
            sample("e%06d".formatted(0), 0);
        }
        try (Reporter.Progress bar = env.reporter().progress("train", run.maxSteps());
             InputPrefetch inputs = new InputPrefetch(run)) {
            bar.advance(globalStep);
            progress.start(bar, globalStep);
            for (int epoch = start.epoch(); epoch < run.epochs() && globalStep < run.maxSteps(); epoch++) {
                List<MicroBatch> batches = run.data().planner().plan(epoch);
                int first = epoch == start.epoch() ? start.nextBatch() : 0;
                Pending pending = null;
                for (int i = first; i < batches.size(); i++) {
                    BatchInputs in = inputs.take(epoch, i, batches);
                    boolean sync = run.data().planner().syncsAfter(i);
                    // another micro-batch of this window follows: the text encoders' backward waits for its U-Net
                    // forward, and this one's loss is read once it is issued
                    boolean windowGoesOn = !sync && i + 1 < batches.size();
                    Tensor issued = forwardBackwardIssued(in, windowGoesOn);
                    if (pending != null) {
                        // the micro-batch before, read now that this one is queued behind it: the device goes on
                        // with this one while the host reads, logs and issues the next
                        Result r = settle(pending);
                        pending = null;
                        if (r != null) {
                            issued.close();
                            return r;
                        }
                    }
                    if (windowGoesOn && overlap) {
                        pending = new Pending(issued, epoch, i, in.size());
                        continue;
                    }
                    float loss = timedRead(issued);
                    if (!Float.isFinite(loss)) {
                        return diverged("the loss is " + loss, epoch, i);
                    }
                    losses.add(epoch, i, loss);
                    lossHistory.add(loss);
                    if (sync) {
                        double norm = optimizerStep();
                        if (!Double.isFinite(norm)) {
                            return diverged("the gradient norm is " + norm, epoch, i);
                        }
                        if (run.config().optim().scaleWeightNorms() > 0) {
                            maxNorm = run.network().applyMaxNorm(run.config().optim().scaleWeightNorms());
                        }
                        globalStep++;
                        lastSync = new ResumePoint(globalStep, epoch, i + 1, losses.window(), losses.total());
                        bar.advance(1);
                        sampleIfDue();
                        saveIfDue(epoch);
                    }
                    logMicroBatch(loss, in.size());
                    if (globalStep >= run.maxSteps()) {
                        break;
                    }
                    if (stopRequested.get()) {
                        return stopped();
                    }
                }
                endEpoch(epoch);
            }
        }
        return finish();
    }

    /**
     * A micro-batch issued whose loss is read after the next one is issued (within an accumulation window, where no
     * optimizer step needs its gradients before the next micro-batch): what the loop does with it then.
     */
    private record Pending(Tensor loss, int epoch, int index, int images) {
    }

    /**
     * The loss of {@code p} read and handled as the loop handles a micro-batch's (a non-finite loss stops the run
     * before any optimizer step used its gradients; a stop request is honoured); null to go on, else the result.
     */
    private Result settle(Pending p) throws IOException {
        float loss = timedRead(p.loss());
        if (!Float.isFinite(loss)) {
            return diverged("the loss is " + loss, p.epoch(), p.index());
        }
        losses.add(p.epoch(), p.index(), loss);
        lossHistory.add(loss);
        logMicroBatch(loss, p.images());
        return stopRequested.get() ? stopped() : null;
    }

    /** {@link #read}, its time added to {@link #lossWaitNanos}. */
    private float timedRead(Tensor loss) {
        long t0 = System.nanoTime();
        try {
            return read(loss);
        } finally {
            lossWaitNanos += System.nanoTime() - t0;
        }
    }

    /** The loss value (a download: the host waits for the device to finish that micro-batch); closes the tensor. */
    private static float read(Tensor loss) {
        try (loss) {
            return loss.item();
        }
    }

    // ---- one micro-batch on the device -----------------------------------------------------------

    /**
     * Forward, loss and backward of one micro-batch, issued ({@link #forwardBackwardIssued(SdxlModels, Scope,
     * BatchInputs, PooledProjection, boolean, int, LongConsumer)}); the loss stays on the device.
     */
    private Tensor forwardBackwardIssued(BatchInputs in, boolean deferTextEncoders) {
        TextEncoderBackward before = takeTextEncoderBackward();
        // the text encoders are checkpointed when any U-Net block is (kohya's --gradient_checkpointing does both)
        Issued issued = forwardBackwardIssued(run.models(), run.process(), in, run.pooledProjection(),
                !run.models().unet().checkpointing().isNone(), run.config().loop().gradAccumSteps(), progress::activations,
                before, deferTextEncoders && pipelineTextEncoders);
        textEncoderBackward = issued.textEncoders();
        return issued.loss();
    }

    /** The deferred text-encoder backward, or null; the trainer no longer holds it. */
    private TextEncoderBackward takeTextEncoderBackward() {
        TextEncoderBackward taken = textEncoderBackward;
        textEncoderBackward = null;
        return taken;
    }

    /** Drops a deferred text-encoder backward (the run ends before an optimizer step would use it). */
    private void dropTextEncoderBackward() {
        TextEncoderBackward dropped = takeTextEncoderBackward();
        if (dropped != null) {
            dropped.close();
        }
    }

    /**
     * One micro-batch on the device: text encoders (with gradients into their adapters) and U-Net forward,
     * the fp32 MSE loss {@code mean((ε_pred − ε)²)} (= the mean over images of each image's mean), and the backward
     * of {@code loss / accumulation} into the LoCon gradients ({@code +=}); the loss is read back at the end (the
     * micro-batch's one sync point). When it is not finite the gradients are not either: the caller must not step.
     *
     * @param activations told the bytes of tensor storage the step holds when the forward is done (inputs,
     *                    activations kept for backward, the loss), before the backward starts
     * @return the loss (not divided)
     */
    static float forwardBackward(SdxlModels models, Scope parent, BatchInputs in, PooledProjection pooled,
                                 boolean checkpointing, int accumulation, LongConsumer activations) {
        return read(forwardBackwardIssued(models, parent, in, pooled, checkpointing, accumulation, activations));
    }

    /**
     * {@link #forwardBackward(SdxlModels, Scope, BatchInputs, PooledProjection, boolean, int, LongConsumer)} without
     * the read: returns the loss (a 0-d fp32 tensor of {@code parent}; the caller reads or closes it). Nothing here
     * waits for the device (its uploads queue behind the work issued before), so the host can issue the next
     * micro-batch while the device still runs this one.
     */
    static Tensor forwardBackwardIssued(SdxlModels models, Scope parent, BatchInputs in, PooledProjection pooled,
                                        boolean checkpointing, int accumulation, LongConsumer activations) {
        return forwardBackwardIssued(models, parent, in, pooled, checkpointing, accumulation, activations, null, false)
                .loss();
    }

    /**
     * The micro-batch's loss: the fused MSE when nothing else is asked; otherwise, in the reference's order, the
     * elementwise loss (squared error, or {@code robust}'s Huber / smooth L1), times {@code mask} ((N, h, w), the same
     * for every channel; {@code --alpha_mask}, the reference's {@code apply_masked_loss}), its mean per image, times the
     * image's weight (when {@code weights} is not null), and the mean over the batch; fp32. Null arguments: not asked.
     */
    static Tensor loss(Functional f, Scope step, Tensor eps, Tensor noise, float[] weights, LossFunction.AtStep robust,
                       float[] mask) {
        if (weights == null && robust == null && mask == null) {
            return f.mseLoss(eps, noise);
        }
        Tensor d = f.sub(eps, noise);
        Tensor elementwise = robust == null ? f.mul(d, d) : robust.elementwise(f, d);
        if (mask != null) {
            var s = eps.shape();
            Tensor m = step.fromHost(mask, Shape.of(s.dim(0), 1, s.dim(2), s.dim(3)), DType.F32);
            elementwise = f.mul(elementwise, f.expand(m, s));
        }
        Tensor perImage = f.mean(elementwise, new int[] {1, 2, 3}, false);              // (N)
        if (weights != null) {
            perImage = f.mul(perImage, step.fromHost(weights, Shape.of(weights.length), DType.F32));
        }
        return f.mean(perImage);
    }

    /**
     * {@link #forwardBackwardIssued(SdxlModels, Scope, BatchInputs, PooledProjection, boolean, int, LongConsumer)}
     * with the text encoders' backward moved between micro-batches: {@code before} (the previous micro-batch's, or
     * null) is issued once this micro-batch's U-Net forward is queued, so that its small, host-paced ops run while
     * the device works through that forward; with {@code deferTextEncoders} (and trained text encoders) this
     * micro-batch's own is returned instead of issued. The text encoders then record on a tape of their own, and the
     * U-Net sees their outputs through views that take its gradients as parameters do. Each parameter gets the same
     * contributions, summed in the same order, as with one backward over both.
     */
    static Issued forwardBackwardIssued(SdxlModels models, Scope parent, BatchInputs in, PooledProjection pooled,
                                        boolean checkpointing, int accumulation, LongConsumer activations,
                                        TextEncoderBackward before, boolean deferTextEncoders) {
        long liveBefore = parent.backend().liveBytes();
        Scope encoders = deferTextEncoders ? parent.child("text encoders") : null;
        try (Scope step = parent.child("step")) {
            // a micro-batch with dropout draws its masks from its key, the U-Net's and the text encoders' apart (so the
            // draws do not depend on whether the encoders record on a tape of their own)
            Functional f = Functional.training(step).withRandomness(draws(in, 0));
            Functional fe = (encoders == null ? f : Functional.training(encoders)).withRandomness(draws(in, 1));
            Shape latents = Shape.of(in.size(), in.channels(), in.height(), in.width());
            Tensor noisy = step.fromHost(in.noisy(), latents, DType.F32);           // (N, C, h, w)
            Tensor noise = step.fromHost(in.noise(), latents, DType.F32);           // (N, C, h, w)
            long[] t = new long[in.size()];
            for (int b = 0; b < t.length; b++) {
                t[b] = in.timesteps()[b];
            }
            Tensor timesteps = step.fromHost(t, in.size());                         // (N)
            SdxlModels.Conditioning c = in.cachedText() != null ? in.cachedText().condition(fe, in.sizes())
                    : models.condition(fe, in.captions(), in.sizes(), pooled, checkpointing, in.maxTokenLength());
            TextEncoderBackward after = null;
            Tensor context = c.context();
            Tensor y = c.y();
            if (encoders != null && fe.carriesGradient(context)) {
                // the U-Net's gradients of the conditioning land in these views, then seed the encoders' backward
                context = encoders.backend().reshape(encoders, c.context(), c.context().shape()).requireGrad();
                y = encoders.backend().reshape(encoders, c.y(), c.y().shape()).requireGrad();
                after = new TextEncoderBackward(encoders, fe, List.of(c.context(), c.y()), List.of(context, y));
            }
            Tensor eps = models.unet().forward(f, noisy, timesteps, context, y);   // (N, C, h, w) F32
            Tensor loss = loss(f, step, eps, noise, in.lossWeights(), in.robustLoss(), in.lossMask()); // () F32
            activations.accept(parent.backend().liveBytes() - liveBefore);
            if (before != null) {
                before.issue();
            }
            // The backward is issued before the loss is read: reading it first made the host wait for the device's
            // forward before it could issue the first backward op. A non-finite loss leaves non-finite gradients,
            // which no optimizer step uses: the caller stops the run.
            f.backward(f.scale(loss, 1.0 / accumulation));
            if (after == null && encoders != null) {
                encoders.close();                                                   // nothing trained in them
            }
            return new Issued(step.keep(loss), after);
        } catch (RuntimeException | Error e) {
            if (encoders != null) {
                encoders.close();
            }
            throw e;
        }
    }

    /** Stream {@code stream} of the micro-batch's dropout draws, or null when it has none. */
    private static Randomness draws(BatchInputs in, int stream) {
        return in.randomKey() == null ? null : Randomness.of(in.randomKey(), stream);
    }

    /** An issued micro-batch: its loss on the device, and its text encoders' backward when it was deferred. */
    record Issued(Tensor loss, TextEncoderBackward textEncoders) {
    }

    /**
     * A micro-batch's text-encoder backward, not yet issued: the encoders' tape, its roots (the conditioning) and the
     * views whose gradients seed them; {@link #issue} or {@link #close} once.
     */
    static final class TextEncoderBackward implements AutoCloseable {
        private final Scope scope;
        private final Functional encoders;
        private final List<Tensor> roots;
        private final List<Tensor> views;

        TextEncoderBackward(Scope scope, Functional encoders, List<Tensor> roots, List<Tensor> views) {
            this.scope = scope;
            this.encoders = encoders;
            this.roots = roots;
            this.views = views;
        }

        /** Issued ones, counted for tests. */
        static final java.util.concurrent.atomic.AtomicLong ISSUED = new java.util.concurrent.atomic.AtomicLong();

        /** Issues the backward into the encoders' parameter gradients and frees the micro-batch's encoder tensors. */
        void issue() {
            ISSUED.incrementAndGet();
            try {
                List<Tensor> seeds = new ArrayList<>();
                for (Tensor v : views) {
                    seeds.add(v.grad());
                }
                encoders.backward(roots, seeds);
            } finally {
                scope.close();
            }
        }

        /** Drops it (a run that stops or diverges before the optimizer step that would have used it). */
        @Override
        public void close() {
            scope.close();
        }
    }

    // ---- the optimizer step -----------------------------------------------------------------------

    /** Global clip and optimizer step with the scheduled lrs, on the device or on the host; returns the norm. */
    private double optimizerStep() {
        long t0 = System.nanoTime();
        try {
            return optimizerStepUntimed();
        } finally {
            optimizerNanos += System.nanoTime() - t0;
        }
    }

    private double optimizerStepUntimed() {
        TextEncoderBackward late = takeTextEncoderBackward();
        if (late != null) {                                // (a window's last micro-batch issues its own at once)
            late.issue();
        }
        List<ParamGroup> groups = run.network().groups();
        double[] lrs = new double[groups.size()];
        for (int g = 0; g < lrs.length; g++) {
            lrs[g] = run.schedule().lrForStep(groups.get(g).baseLr(), globalStep + 1);
        }
        if (run.network().deviceOptimizer() != null) {
            return run.network().deviceStep(lrs, run.config().optim().maxGradNorm());
        }
        return hostOptimizerStep(run.network(), run.optimizer(), run.config().optim().maxGradNorm(), lrs);
    }

    /**
     * The optimizer step of trainer-spec §2 on the host: the accumulated gradients come down, are clipped
     * globally, the optimizer updates the fp32 values with {@code lrs} (one per group) and the values go back to
     * the device. A non-finite norm skips the update. Returns the norm before clipping.
     */
    static double hostOptimizerStep(TrainableNetwork net, Optimizer optimizer, double maxGradNorm, double[] lrs) {
        return hostOptimizerStep(net, optimizer, maxGradNorm, lrs, new long[4]);
    }

    /** As above; adds the nanoseconds of its phases to {@code phases}: gradients down, clip, update, values up. */
    static double hostOptimizerStep(TrainableNetwork net, Optimizer optimizer, double maxGradNorm, double[] lrs,
                                    long[] phases) {
        long t0 = System.nanoTime();
        net.gradientsToHost();                                                      // download: sync point
        long t1 = System.nanoTime();
        double norm = GradClip.clip(net.groups(), maxGradNorm);
        long t2 = System.nanoTime();
        phases[0] += t1 - t0;
        phases[1] += t2 - t1;
        if (!Double.isFinite(norm)) {
            net.clearHostGradients();
            return norm;
        }
        optimizer.step(net.groups(), lrs);
        long t3 = System.nanoTime();
        net.valuesToDevice();                                                       // upload: sync point
        net.clearHostGradients();
        phases[2] += t3 - t2;
        phases[3] += System.nanoTime() - t3;
        return norm;
    }

    // ---- logs, samples, saves --------------------------------------------------------------------

    /** TensorBoard scalars of this micro-batch (lrs after the scheduler step) and the progress line. */
    private void logMicroBatch(float loss, int images) throws IOException {
        double unetLr = lrAfterStep(TrainableNetwork.UNET_GROUP);
        double teLr = lrAfterStep(TrainableNetwork.TEXT_ENCODER_GROUP);
        boolean maxNormOn = run.config().optim().scaleWeightNorms() > 0;
        if (run.logger() != null) {
            run.logger().microBatch(globalStep, loss, losses.average(), unetLr, teLr);
            if (maxNormOn) {
                run.logger().maxNorm(globalStep, maxNorm.keysScaled(), maxNorm.averageNorm(), maxNorm.largestNorm());
            }
        }
        progress.microBatch(globalStep, run.maxSteps(), loss, losses.average(), Double.isNaN(unetLr) ? teLr : unetLr,
                images, maxNormOn ? maxNorm : null);
        maxNorm = TrainableNetwork.MaxNorm.NONE;
    }

    private double lrAfterStep(String group) {
        return run.network().baseLr(group) * run.schedule().factor(globalStep);
    }

    private void sampleIfDue() throws IOException {
        int every = run.config().sample().everyNSteps();
        // kohya's sample_images_common: --sample_every_n_epochs, when set, replaces the step cadence
        if (every > 0 && globalStep % every == 0 && run.config().sample().everyNEpochs() == 0) {
            sample("%06d".formatted(globalStep), globalStep);
        }
    }

    private void sample(String label, long step) throws IOException {
        if (run.samples() == null || run.samples().isEmpty()) {
            return;
        }
        progress.pause();
        long t0 = System.nanoTime();
        long inRound = run.samples().renderNanos() + run.samples().filesNanos();
        List<Path> files;
        try (TemporaryMerge merged = mergedForSampling()) {
            files = run.samples().render(run.models(), run.process(), label, step, LocalDateTime.now(env.clock()));
        }
        long round = System.nanoTime() - t0;
        samplingNanos += round;
        samplingMergeNanos += round - (run.samples().renderNanos() + run.samples().filesNanos() - inRound);
        env.reporter().log(Reporter.Level.INFO, "INFO: step " + step + ": " + files.size() + " sample image(s) in "
                + files.getFirst().getParent());
        progress.resume();
    }

    /**
     * On a GPU with the memory for it, the LoCon merged into copies of the weights for a sampling round
     * ({@link TemporaryMerge}: a 1024x1024 image in 1.5 s instead of 2.4 s with the recipe's branches on an H100),
     * else null (the branches run). Decided at the first round, from the device's free memory then. Never over fp8
     * weights ({@code --fp8_base}): the merged copies would round the LoCon's delta to fp8 with them, where the
     * reference adds the branch's output to the fp8 layer's.
     */
    private TemporaryMerge mergedForSampling() {
        LoConNetwork net = run.network().network();
        if (mergeSamples == null) {
            SdxlDtypes dtypes = run.models().dtypes();
            boolean fp8 = dtypes.unetWeights().isStorageOnly() || dtypes.textEncoderWeights().isStorageOnly();
            if (fp8 && env.backend().device().kind() == Device.Kind.CUDA) {
                env.reporter().log(Reporter.Level.INFO, "INFO: samples: the LoCon runs as branches (the base weights"
                        + " are fp8: merged, it would be rounded to fp8 too)");
            }
            mergeSamples = !fp8 && (mergeSamplesForTests != null ? mergeSamplesForTests : worthMerging(net));
        }
        return mergeSamples ? TemporaryMerge.open(net, run.process()) : null;
    }

    private boolean worthMerging(LoConNetwork net) {
        if (env.backend().device().kind() != Device.Kind.CUDA) {
            return false;
        }
        long[] memory = AutoCheckpointing.deviceMemory(env.backend());
        long copies = TemporaryMerge.extraBytes(net);
        long need = copies + SAMPLING_HEADROOM_BYTES;
        boolean fits = memory != null && memory[0] >= need;
        env.reporter().log(Reporter.Level.INFO, "INFO: samples: " + (fits
                ? "the LoCon is merged into copies of the weights for each round (" + MemoryPlan.size(copies)
                + " while sampling)"
                : "the LoCon runs as branches (merging needs " + MemoryPlan.size(need) + " free, the device has "
                + (memory == null ? "no memory figure" : MemoryPlan.size(memory[0])) + ")"));
        return fits;
    }

    private void saveIfDue(int epoch) throws IOException {
        int every = run.config().save().everyNSteps();
        if (every > 0 && globalStep % every == 0) {
            save(OutputNames.step(run.config().paths().outputName(), globalStep), epoch, lastSync,
                    run.config().save().saveState());
            run.checkpoints().removeOutdated(globalStep);
        }
    }

    /** Epoch end: loss/epoch, epoch saves and samples (trainer-spec §10; kohya's per-epoch cadences). */
    private void endEpoch(int epoch) throws IOException {
        if (run.logger() != null) {
            run.logger().epoch(epoch, losses.average());
        }
        int epochs = run.epochs();
        ResumePoint next = new ResumePoint(globalStep, epoch + 1, 0, losses.window(), losses.total());
        if (lastSync.epoch() == epoch && lastSync.globalStep() == globalStep) {
            lastSync = next; // the epoch ended on an optimizer step: resume at the next epoch
        }
        int saveEvery = run.config().save().epochCadence(epochs);
        if (saveEvery > 0 && (epoch + 1) % saveEvery == 0 && epoch + 1 < epochs) {
            save(OutputNames.epoch(run.config().paths().outputName(), epoch + 1), epoch + 1, lastSync,
                    run.config().save().saveState());
            run.checkpoints().removeOutdatedEpoch(epoch + 1, saveEvery);
        }
        int sampleEvery = run.config().sample().everyNEpochs();
        if (sampleEvery > 0 && (epoch + 1) % sampleEvery == 0) {
            sample("e%06d".formatted(epoch + 1), globalStep);
        }
    }

    /** Saves the LoRA as {@code fileName}, with the resume state at {@code at} beside it when {@code withState}. */
    private Path save(String fileName, int metadataEpoch, ResumePoint at, boolean withState) throws IOException {
        progress.pause();
        long t0 = System.nanoTime();
        Path file = run.checkpoints().save(fileName, run.network(), globalStep, metadataEpoch, nowSeconds(),
                withState ? state(at) : null);
        savingNanos += System.nanoTime() - t0;
        env.reporter().log(Reporter.Level.INFO, "INFO: saved " + file + (withState ? " and its resume state" : ""));
        progress.resume();
        return file;
    }

    /**
     * Makes sure the weights of the last optimizer step are saved with a resume state (a stop or a
     * divergence, where the weights have not moved since {@code lastSync}): a new step save when the last
     * save is older, else the state beside the last save when it has none yet.
     */
    private void saveResumePoint() throws IOException {
        if (globalStep == 0) {
            return;
        }
        String name = OutputNames.step(run.config().paths().outputName(), globalStep);
        Checkpoints c = run.checkpoints();
        if (c.lastSavedStep() != globalStep) {
            save(name, lastSync.epoch(), lastSync, true);
        } else if (c.lastStateStep() != globalStep) {
            progress.pause();
            long t0 = System.nanoTime();
            Path state = c.writeState(c.lastLora().getFileName().toString(), state(lastSync));
            savingNanos += System.nanoTime() - t0;
            env.reporter().log(Reporter.Level.INFO, "INFO: saved " + state);
            progress.resume();
        }
    }

    /** The training state at {@code at}: weights and optimizer as they are now (unchanged since that step). */
    private TrainingState state(ResumePoint at) {
        Map<String, String> info = new java.util.LinkedHashMap<>(run.stateInfo());
        info.putAll(run.network().scalarInfo());                      // max-norm regularisation's scalars
        return new TrainingState(at.globalStep(), at.epoch(), at.nextBatch(), run.config().loop().seed(), run.digest(),
                Map.of(), info, run.network().weights(), run.optimizerState(), at.lossWindow(), at.lossTotal());
    }

    private double nowSeconds() {
        return env.clock().millis() / 1000.0;
    }

    // ---- endings ---------------------------------------------------------------------------------

    private Result finish() throws IOException {
        Path last = save(OutputNames.last(run.config().paths().outputName()), run.epochs(), lastSync, true);
        Path montage = montage();
        String msg = String.format(Locale.ROOT, "trained %d steps; final LoRA %s", globalStep, last);
        return result(Outcome.COMPLETED, msg, montage);
    }

    private Result stopped() throws IOException {
        saveResumePoint();
        Path montage = montage();
        String msg = run.checkpoints().lastState() == null
                ? "stopped at step " + globalStep + " before the first optimizer step; nothing to save"
                : "stopped at step " + globalStep + "; saved " + run.checkpoints().lastLora() + "; continue with --resume "
                + run.checkpoints().lastState();
        return result(Outcome.STOPPED, msg, montage);
    }

    private Result diverged(String what, int epoch, int index) throws IOException {
        saveResumePoint(); // the weights of the last optimizer step: the update that failed was not applied
        Path good = run.checkpoints().lastLora();
        String msg = what + " at step " + (globalStep + 1) + " (epoch " + (epoch + 1) + ", micro-batch " + (index + 1)
                + "): training stopped and these weights were not saved; "
                + (good == null ? "no save was made before" : "the last good save is " + good + " (resume from "
                + run.checkpoints().lastState() + ")")
                + ". Try a lower learning rate or --max_grad_norm.";
        return result(Outcome.DIVERGED, msg, null);
    }

    /**
     * Writes the sample montage, or warns and returns null when that fails: the run's LoRA files and sample
     * images are saved by now, so a montage that cannot be made (no fonts, no memory, disk full) must not turn a
     * finished run into an error.
     */
    private Path montage() {
        if (run.samples() == null) {
            return null;
        }
        long t0 = System.nanoTime();
        try {
            return run.samples().writeMontage(env.reporter());
        } catch (IOException | RuntimeException | Error e) {
            env.reporter().log(Reporter.Level.WARNING, "WARNING: could not write the sample montage (" + e
                    + "); the LoRA files and sample images are not affected");
            if (env.reporter().enabled(Reporter.Level.DEBUG)) {
                StringWriter trace = new StringWriter();
                e.printStackTrace(new PrintWriter(trace));
                env.reporter().log(Reporter.Level.DEBUG, trace.toString().stripTrailing());
            }
            return null;
        } finally {
            samplingNanos += System.nanoTime() - t0;
        }
    }

    private Timings timings() {
        double total = (System.nanoTime() - runStartNanos) / 1e9;
        double setup = setupNanos / 1e9;
        double caching = run.cachingNanos() / 1e9;
        double sampling = samplingNanos / 1e9;
        double saving = savingNanos / 1e9;
        return new Timings(setup, caching, Math.max(0, total - setup - caching - sampling - saving), sampling, saving,
                total, lossWaitNanos / 1e9, optimizerNanos / 1e9, run.checkpoints().writerWaitNanos() / 1e9,
                run.checkpoints().stateNanos() / 1e9, samplingMergeNanos / 1e9,
                run.samples() == null ? 0 : run.samples().renderNanos() / 1e9,
                run.samples() == null ? 0 : run.samples().filesNanos() / 1e9);
    }

    private Result result(Outcome outcome, String message, Path montage) throws IOException {
        long t0 = System.nanoTime();
        run.checkpoints().flush(); // the last LoRA file is on disk before the run reports it
        savingNanos += System.nanoTime() - t0;
        Map<String, Path> outputs = new LinkedHashMap<>(run.outputs());
        if (run.checkpoints().lastLora() != null) {
            outputs.put("last LoRA", run.checkpoints().lastLora());
        }
        if (montage != null) {
            outputs.put("sample montage", montage);
        }
        return new Result(outcome, globalStep, run.checkpoints().lastLora(), run.checkpoints().lastState(), message,
                List.copyOf(lossHistory), montage, outputs, timings());
    }

    // ---- progress line ---------------------------------------------------------------------------

    /** The progress bar's status: step, loss, average, lr, images/s, time left; and the first activation size. */
    private final class Progress {
        private Reporter.Progress bar;
        private long startNanos;
        private long pausedNanos;
        private long pauseStart;
        private long firstStep;
        private long images;
        private boolean activationsReported;

        void start(Reporter.Progress b, long step) {
            bar = b;
            startNanos = System.nanoTime();
            firstStep = step;
        }

        void pause() {
            pauseStart = System.nanoTime();
        }

        void resume() {
            pausedNanos += System.nanoTime() - pauseStart;
        }

        void activations(long bytes) {
            if (!activationsReported) {
                activationsReported = true;
                env.reporter().log(Reporter.Level.INFO, "INFO: activations kept for backward in the first micro-batch: "
                        + MemoryPlan.size(bytes));
            }
        }

        /** {@code maxNorm}: the micro-batch's max-norm pass (kohya's "Keys Scaled", "Average key norm"), or null. */
        void microBatch(long step, long maxSteps, float loss, double average, double lr, int n,
                        TrainableNetwork.MaxNorm maxNorm) {
            images += n;
            long now = System.nanoTime();
            double trainSeconds = Math.max(1e-9, (now - startNanos - pausedNanos) / 1e9);
            double wallSeconds = Math.max(1e-9, (now - startNanos) / 1e9);
            long done = step - firstStep;
            String left = done > 0 ? clock((long) (wallSeconds / done * (maxSteps - step))) : "?";
            String norms = maxNorm == null ? "" : String.format(Locale.ROOT, " keys scaled %d avg key norm %.3g",
                    maxNorm.keysScaled(), maxNorm.averageNorm());
            bar.status(String.format(Locale.ROOT, "loss %.4f avg %.4f lr %.2e%s %.2f img/s %s left", loss, average, lr,
                    norms, images / trainSeconds, left));
        }

        private String clock(long seconds) {
            return seconds >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
                    : String.format(Locale.ROOT, "%d:%02d", seconds / 60, seconds % 60);
        }
    }

    /** The pooled orientation {@code --te2_pooled} asks for. */
    static PooledProjection pooledOf(TrainConfig cfg) {
        return cfg.network().te2PooledKohya() ? PooledProjection.KOHYA : PooledProjection.SAI;
    }
}
