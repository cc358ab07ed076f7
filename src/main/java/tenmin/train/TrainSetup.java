package tenmin.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.lora.BlockWeights;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.sample.LoraSet;
import tenmin.sample.ModelSource;
import tenmin.sample.PromptFile;
import tenmin.sample.SdxlPipeline;
import tenmin.train.data.ImageAugment;
import tenmin.train.log.TrainLogger;
import tenmin.train.noise.DdpmSchedule;
import tenmin.train.optim.DeviceClybW;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.OptimizerState;
import tenmin.train.optim.Optimizers;
import tenmin.train.save.ModelHashes;
import tenmin.train.save.TrainingMetadata;
import tenmin.train.save.TrainingState;
import tenmin.train.schedule.LrSchedule;

/**
 * Everything the loop uses, prepared in the reference's order (trainer-spec §2): the resume state (it fixes
 * the seed), the dataset and its buckets, the resolved configuration and memory plan printed, the models
 * loaded, the latent cache built, the LoCon network created (or restored), the optimizer and schedule,
 * the TensorBoard log, the sample prompts and the saver. Closing releases the logger and every tensor.
 */
final class TrainSetup implements AutoCloseable {
    /**
     * Tests: the model dtypes to train with instead of {@link SdxlDtypes#of}'s (which is fp32 on a CPU), so that the
     * mixed-precision loop a GPU runs can run on CPU libtorch and the cpu backend; null in production.
     */
    static volatile SdxlDtypes dtypesForTests;

    private final TrainConfig config;
    private final Scope process;
    private final TrainingData data;
    private final SdxlModels models;
    private final LatentCache cache;
    private final TextEncoderCache textCache;
    private final AlphaMasks alphaMasks;
    private final TrainableNetwork network;
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final DdpmSchedule ddpm;
    private final TrainLogger logger;
    private final TrainingSamples samples;
    private final Checkpoints checkpoints;
    private final Trainer.ResumePoint start;
    private final long maxSteps;
    private final int epochs;
    private final String digest;
    private final Map<String, String> stateInfo;
    private final Map<String, Path> outputs;
    private final long cachingNanos;

    private TrainSetup(Builder b) {
        this.config = b.config;
        this.process = b.process;
        this.data = b.data;
        this.models = b.models;
        this.cache = b.cache;
        this.textCache = b.textCache;
        this.alphaMasks = b.alphaMasks;
        this.network = b.network;
        this.optimizer = b.optimizer;
        this.schedule = b.schedule;
        this.ddpm = b.config.loop().noise().schedule();
        this.logger = b.logger;
        this.samples = b.samples;
        this.checkpoints = b.checkpoints;
        this.start = b.start;
        this.maxSteps = b.maxSteps;
        this.epochs = b.epochs;
        this.digest = Resume.digest(Resume.recipe(b.config));
        this.stateInfo = java.util.Collections.unmodifiableMap(b.stateInfo);
        this.outputs = java.util.Collections.unmodifiableMap(b.outputs);
        this.cachingNanos = b.cachingNanos;
    }

    /** Mutable parts while opening; anything opened is closed again if a later part fails. */
    private static final class Builder {
        TrainConfig config;
        Scope process;
        TrainingData data;
        SdxlModels models;
        LatentCache cache;
        TextEncoderCache textCache;
        AlphaMasks alphaMasks;
        TrainableNetwork network;
        Optimizer optimizer;
        boolean optimizerOnDevice;
        LrSchedule schedule;
        TrainLogger logger;
        TrainingSamples samples;
        Checkpoints checkpoints;
        Trainer.ResumePoint start;
        long maxSteps;
        int epochs;
        Map<String, String> stateInfo = new LinkedHashMap<>();
        Map<String, Path> outputs = new LinkedHashMap<>();
        long cachingNanos;
        /** The U-Net blocks checkpointed, resolved from --checkpointing / --gradient_checkpointing. */
        CheckpointPolicy checkpointing = CheckpointPolicy.none();
    }

    static TrainSetup open(TrainConfig requested, Trainer.Environment env, Scope process) throws IOException {
        Builder b = new Builder();
        b.process = process;
        try {
            prepare(b, requested, env);
            return new TrainSetup(b);
        } catch (IOException | RuntimeException e) {
            if (b.logger != null) {
                try {
                    b.logger.close();
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    private static void prepare(Builder b, TrainConfig requested, Trainer.Environment env) throws IOException {
        Reporter r = env.reporter();
        TrainingState resumed = requested.paths().resume() == null ? null : Resume.read(requested.paths().resume(), requested);
        TrainConfig cfg = resumed == null ? requested : withSeed(requested, resumed.seed());
        b.config = cfg;

        // ---- data (the demo writes its own) and model sizes
        Path dataDir = cfg.paths().trainDataDir();
        Path prompts = cfg.sample().prompts();
        if (cfg.demo()) {
            r.log(Reporter.Level.INFO, "INFO: built-in demo: a tiny SDXL-shaped model with RANDOM weights, built in memory,"
                    + " trained on generated shapes. It shows the recipe's mechanics (LoCon, ClybW, cosine schedule,"
                    + " accumulation, multires noise, flips, caption shuffling, caches, saves, samples, logs) in about a"
                    + " minute; its samples are abstract patterns, not pictures. Train a real checkpoint with"
                    + " --pretrained_model_name_or_path and --train_data_dir.");
            DemoData.Written demo = DemoData.write(cfg.paths().outputDir().resolve("dataset"));
            dataDir = demo.dataDir();
            prompts = demo.prompts();
            b.outputs.put("demo dataset", dataDir);
        }
        SdxlConfig modelConfig = cfg.demo() ? SdxlConfig.tiny()
                : cfg.paths().randomModel() != null ? ModelSource.randomConfig(cfg.paths().randomModel())
                : cfg.paths().modelConfig() != null ? SdxlConfig.fromConfigFile(cfg.paths().modelConfig()) : SdxlConfig.sdxl();
        SdxlDtypes dtypes = dtypes(cfg, env.backend().device());
        b.data = TrainingData.prepare(cfg, dataDir, modelConfig.vaeScale() * modelConfig.latentMultiple(), r);
        b.maxSteps = b.data.maxSteps(cfg);
        b.epochs = b.data.planner().epochsFor(b.maxSteps);
        b.optimizer = Optimizers.create(cfg.optim().type(), cfg.optim().args());
        b.schedule = cfg.schedule().build(b.maxSteps, cfg.optim().learningRate());
        List<PromptFile.SamplePrompt> samplePrompts = prompts == null ? List.of()
                : PromptFile.read(prompts, cfg.sample().sampler(), r);
        for (PromptFile.SamplePrompt p : samplePrompts) {
            try {
                TrainingSamples.settings(p, modelConfig);   // sampler and CFG scale checked now, not at the first sampling step
            } catch (InputException e) {
                throw new InputException(prompts + ": prompt " + (p.index() + 1) + ": " + e.getMessage());
            }
        }

        // ---- what will happen, before anything big is allocated
        List<LoConTarget> planned = MemoryPlan.plannedTargets(modelConfig, cfg.network());
        long loraParams = planned.stream().mapToLong(LoConTarget::parameterCount).sum();
        LatentCache.Mode cacheMode = LatentCache.modeOf(cfg.data());
        AutoCheckpointing.Choice checkpointing = AutoCheckpointing.resolve(cfg, modelConfig, env.backend(),
                AutoCheckpointing.planner(cfg, modelConfig, dtypes, env.backend().device()));
        b.checkpointing = checkpointing.policy();
        describe(r, cfg, b, modelConfig, dtypes, env, planned, loraParams, samplePrompts.size());
        if (checkpointing.why() != null) {
            r.log(Reporter.Level.INFO, "INFO: " + checkpointing.why());
        }
        boolean optimizerOnDevice = DeviceClybW.enabled() && DeviceClybW.supportsType(b.optimizer)
                && env.backend().canAlias();
        TrainBenchmark.Plan step = null;
        if (cfg.network().trainUnet()) {
            step = checkpointing.plan() != null ? checkpointing.plan()
                    : stepPlan(cfg, modelConfig, dtypes, env.backend().device(), b.checkpointing);
            if (optimizerOnDevice && !AutoCheckpointing.momentsFit(step, AutoCheckpointing.deviceMemory(env.backend()))) {
                // a small card: the moments go to the host rather than the run to an out-of-memory error
                optimizerOnDevice = false;
                r.log(Reporter.Level.INFO, "INFO: the optimizer steps on the host: its moments ("
                        + MemoryPlan.size(step.deviceMomentBytes()) + ") do not fit on the device beside the training step");
                step = stepPlan(cfg, modelConfig, dtypes, env.backend().device(), b.checkpointing, 0);
            }
        }
        b.optimizerOnDevice = optimizerOnDevice;
        MemoryPlan plan = MemoryPlan.of(modelConfig, dtypes, loraParams, b.optimizer.slotNames().size(), optimizerOnDevice,
                cacheMode == LatentCache.Mode.MEMORY ? latentBytes(b.data, modelConfig, cfg.data().flipAug()) : 0);
        for (String line : plan.lines(env.backend().device().toString())) {
            r.log(Reporter.Level.INFO, "INFO: " + line);
        }
        if (step != null) {
            List<TrainConfig.Dataset> datasets = cfg.datasets();
            if (datasets.size() > 1) {
                TrainConfig.Dataset worst = plannedDataset(cfg);
                r.log(Reporter.Level.INFO, "INFO: the step is planned for dataset " + (datasets.indexOf(worst) + 1)
                        + " of " + datasets.size() + " (batch size " + worst.batchSize() + " at " + worst.width() + "x"
                        + worst.height() + "), the most pixels per micro-batch");
            }
            for (String line : step.memoryLines()) {
                r.log(Reporter.Level.INFO, "INFO: " + line);
            }
            if (env.backend().device().kind() == tenmin.engine.api.Device.Kind.CPU) {
                long microBatches = (long) b.data.planner().microBatchesPerEpoch() * b.epochs;
                cpuWarning(step.flops(), microBatches, Runtime.getRuntime().availableProcessors())
                        .ifPresent(w -> r.log(Reporter.Level.WARNING, w));
            }
        }

        // ---- models, with --base_weights merged into them (checked against the configuration before the load)
        List<LoraSet.Prepared> baseWeights = LoraSet.prepare(cfg.paths().baseWeights(), modelConfig,
                BlockWeights.Options.defaults(), r);
        if (cfg.randomBase()) {
            if (!cfg.demo()) {
                r.log(Reporter.Level.INFO, "INFO: building a " + cfg.paths().randomModel() + "-sized model with RANDOM"
                        + " weights (--random_model): the run measures the recipe; its LoRA means nothing");
            }
            b.models = SdxlModels.random(modelConfig, b.process, dtypes, DemoData.MODEL_SEED);
            if (cfg.demo()) {
                b.outputs.put("demo base model", DemoData.writeBase(cfg.paths().outputDir(), modelConfig, b.process, r));
            }
        } else {
            r.log(Reporter.Level.INFO, "INFO: loading " + cfg.paths().pretrainedModel());
            b.models = SdxlModels.load(cfg.paths().pretrainedModel(), cfg.paths().vae(), modelConfig, b.process, dtypes);
        }
        mergeBaseWeights(baseWeights, b.models, b.process, r);
        try {
            b.models.unet().setCheckpointing(b.checkpointing);
        } catch (IllegalArgumentException e) {
            throw new InputException("--checkpointing: " + e.getMessage());
        }

        // ---- latent cache (VAE in fp32)
        long cachingStart = System.nanoTime();
        try (Reporter.Progress p = r.progress("caching latents", b.data.imageCount())) {
            b.cache = LatentCache.build(b.data, b.models.vae(), dtypes.vae(), b.process, cacheMode, cfg.data().flipAug(),
                    cfg.loop().seed(), modelConfig.vaeScale(), p)
                    .withAugment(new ImageAugment(cfg.data().randomCrop(), cfg.data().colorAug()));
        }
        if (cfg.data().alphaMask()) {
            try (Reporter.Progress p = r.progress("reading alpha masks", b.data.imageCount())) {
                b.alphaMasks = AlphaMasks.build(b.data, modelConfig.vaeScale(), p);
            }
        } else if (cfg.data().maskedLoss()) {
            try (Reporter.Progress p = r.progress("reading loss masks", b.data.imageCount())) {
                b.alphaMasks = AlphaMasks.fromConditioning(b.data, modelConfig.vaeScale(), p);
            }
        }
        if (cfg.data().cacheTextEncoderOutputs()) {
            try (Reporter.Progress p = r.progress("caching text encoder outputs", b.data.imageCount())) {
                b.textCache = TextEncoderCache.build(b.models, b.data, cfg, Trainer.pooledOf(cfg), b.process, p);
            }
            r.log(Reporter.Level.INFO, String.format(Locale.ROOT, "INFO: text encoder outputs cached: %d captions,"
                    + " %.1f MiB", b.data.imageCount(), b.textCache.bytes() / 1048576.0));
        }
        b.cachingNanos = System.nanoTime() - cachingStart;
        if (cacheMode != LatentCache.Mode.NONE) {
            r.log(Reporter.Level.INFO, "INFO: latent cache (" + cacheMode.name().toLowerCase(Locale.ROOT) + "): "
                    + b.cache.encoded() + " encoded, " + b.cache.reused() + " reused");
        }

        // ---- the LoCon network (kohya re-seeds before creating it), optimizer state when resuming
        Scope loraScope = b.process.child("locon");
        TrainConfig.Network n = cfg.network();
        b.network = TrainableNetwork.create(b.models, new LoConRanks(n.dim(), n.alpha(), n.convDim(), n.convAlpha()),
                n.teModules(), n.trainTextEncoder(), n.trainUnet(), cfg.optim().textEncoderLr(), cfg.optim().unetLr(),
                loraScope, cfg.loop().seed());
        if (n.dropout().any()) {
            b.network.network().setDropout(n.dropout());
            r.log(Reporter.Level.INFO, String.format(Locale.ROOT, "INFO: LoCon dropout while training: dropout %s,"
                    + " rank_dropout %s, module_dropout %s (the merged-weight fast path is off where the branch's"
                    + " output is dropped out)", n.dropout().network(), n.dropout().rank(), n.dropout().module()));
        }
        double startedAt = env.clock().millis() / 1000.0;
        long sessionId = Rng.derive(cfg.loop().seed(), env.clock().millis()).nextLong() & 0xFFFFFFFFL;
        if (b.optimizerOnDevice && b.network.optimizeOnDevice(b.optimizer, loraScope)) {
            r.log(Reporter.Level.INFO, "INFO: the optimizer steps on the device (" + cfg.optim().type() + " over "
                    + b.network.deviceOptimizer().numel() + " values; " + DeviceClybW.ENV + "=0 keeps it on the host)");
        }
        Path startWeights = cfg.paths().networkWeights();
        if (startWeights != null && resumed == null) {
            r.log(Reporter.Level.INFO, "INFO: network weights from " + startWeights + ": "
                    + b.network.loadWeights(startWeights));
        } else if (startWeights != null) {
            r.log(Reporter.Level.INFO, "INFO: --network_weights not read: the training state holds the weights");
        }
        if (resumed != null) {
            b.network.restore(resumed.lora(), requested.paths().resume().toString());
            b.network.restoreScalars(resumed.info(), requested.paths().resume().toString());
            try {
                if (b.network.deviceOptimizer() != null) {
                    b.network.deviceOptimizer().importState(resumed.optimizer());
                } else {
                    b.optimizer.importState(resumed.optimizer());
                }
            } catch (IllegalArgumentException e) {
                throw new InputException(requested.paths().resume() + ": " + e.getMessage());
            }
            b.start = new Trainer.ResumePoint(resumed.globalStep(), resumed.epoch(), resumed.batchInEpoch(),
                    resumed.lossRecord(), resumed.lossTotal());
            startedAt = Double.parseDouble(resumed.info().getOrDefault("started_at", Double.toString(startedAt)));
            sessionId = Long.parseLong(resumed.info().getOrDefault("session_id", Long.toString(sessionId)));
            r.log(Reporter.Level.INFO, "INFO: resuming at step " + resumed.globalStep() + " (epoch " + (resumed.epoch() + 1)
                    + ", after micro-batch " + resumed.batchInEpoch() + " of it)");
        } else {
            b.start = new Trainer.ResumePoint(0, 0, 0, new float[0], 0);
        }

        // ---- metadata of every save, logs, samples
        String modelName;
        String legacyHash;
        String fullHash;
        if (cfg.randomBase()) {
            modelName = "tenmin-" + (cfg.demo() ? "demo-tiny" : cfg.paths().randomModel()) + "-random-seed" + DemoData.MODEL_SEED;
            legacyHash = "None";
            fullHash = "None";
        } else {
            r.log(Reporter.Level.INFO, "INFO: hashing the base model for the metadata");
            modelName = cfg.paths().pretrainedModel().getFileName().toString();
            legacyHash = ModelHashes.legacyModelHash(cfg.paths().pretrainedModel());
            fullHash = ModelHashes.fileSha256(cfg.paths().pretrainedModel());
        }
        TrainingMetadata.Vae vae = cfg.paths().vae() == null ? null : new TrainingMetadata.Vae(
                cfg.paths().vae().getFileName().toString(), ModelHashes.legacyModelHash(cfg.paths().vae()),
                ModelHashes.fileSha256(cfg.paths().vae()));
        TrainingMetadata.Run meta = new TrainingMetadata.Run(sessionId, startedAt, b.data.dataset().numTrainImages(),
                b.data.planner().microBatchesPerEpoch(), b.epochs, b.maxSteps, b.data.datasetDirs(),
                b.data.tagFrequency(), b.data.bucketInfo(cfg), modelName, legacyHash, fullHash, env.version(),
                b.optimizer.metadataName(), vae, b.data.datasetInfos(cfg));
        b.checkpoints = new Checkpoints(cfg, meta, ZoneId.systemDefault());
        b.stateInfo.put("tenmin_version", env.version());
        b.stateInfo.put("session_id", Long.toString(sessionId));
        b.stateInfo.put("started_at", Double.toString(startedAt));
        b.stateInfo.put("base_model", modelName);
        b.stateInfo.put(Resume.RECIPE_INFO, Resume.recipeText(Resume.recipe(cfg)));
        b.outputs.put("output folder", cfg.paths().outputDir());
        Files.createDirectories(cfg.paths().outputDir());
        if (cfg.log().tensorboard()) {
            LocalDateTime now = LocalDateTime.now(env.clock());
            b.logger = TrainLogger.open(cfg.log(), now, env.clock().millis() / 1000, hostName(),
                    () -> env.clock().millis() / 1000.0);
            b.outputs.put("TensorBoard log", b.logger.file());
        }
        if (!samplePrompts.isEmpty() && (cfg.sample().everyNSteps() > 0 || cfg.sample().everyNEpochs() > 0
                || cfg.sample().atFirst())) {
            Path sampleDir = cfg.paths().outputDir().resolve("sample");
            b.samples = new TrainingSamples(samplePrompts, sampleDir, cfg.paths().outputName(), cfg.loop().seed(),
                    Trainer.pooledOf(cfg), b.logger, cfg.randomBase() ? null : new SdxlPipeline.ModelId(stem(modelName),
                    fullHash.substring(0, 10), vae == null ? null : vae.name(),
                    vae == null ? null : vae.newHash().substring(0, 10)), cfg.loop().vPrediction());
            b.outputs.put("samples", sampleDir);
        }
    }

    private static String stem(String fileName) {
        int dot = fileName.lastIndexOf('.');
        return dot > 0 ? fileName.substring(0, dot) : fileName;
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    /** The resolved run, printed before anything big happens (kohya's "running training" block included). */
    private static void describe(Reporter r, TrainConfig cfg, Builder b, SdxlConfig model, SdxlDtypes dtypes,
                                 Trainer.Environment env, List<LoConTarget> targets, long loraParams, int prompts) {
        TrainingData d = b.data;
        long te = targets.stream().filter(t -> !t.name().startsWith("lora_unet_")).count();
        List<String> lines = new java.util.ArrayList<>();
        lines.add("resolved training configuration:");
        lines.add("  model: " + (cfg.demo() ? "built-in tiny SDXL-shaped model (random weights)"
                : cfg.paths().randomModel() != null ? cfg.paths().randomModel() + "-sized model (random weights)"
                : cfg.paths().pretrainedModel() + (cfg.paths().modelConfig() == null ? " (SDXL)" : " (sizes from "
                + cfg.paths().modelConfig() + ")")) + "; device " + env.backend().device() + " (" + env.backend().name()
                + " backend); " + dtypes);
        lines.add(String.format(Locale.ROOT, "  dataset: %d images in %d folders, %d buckets used, resolution %dx%d%s",
                d.imageCount(), d.dataset().subsets().size(), d.plan().nonEmptyEntries().size(), cfg.data().width(),
                cfg.data().height(), cfg.data().enableBucket() ? " (aspect-ratio buckets)" : ""));
        List<TrainConfig.Dataset> datasets = cfg.datasets();
        for (int i = 1; i < datasets.size(); i++) {
            TrainConfig.Dataset ds = datasets.get(i);
            lines.add(String.format(Locale.ROOT, "  dataset %d of %d: resolution %dx%d%s, batch size %d", i + 1,
                    datasets.size(), ds.width(), ds.height(), ds.enableBucket() ? " (aspect-ratio buckets)" : "",
                    ds.batchSize()));
        }
        TrainConfig.Network n = cfg.network();
        lines.add(String.format(Locale.ROOT, "  network: LyCORIS LoCon preset %s, %d modules (%d text encoder, %d U-Net),"
                        + " %,d trainable values; dim %d alpha %s, conv_dim %d conv_alpha %s",
                n.preset(), targets.size(), te, targets.size() - te, loraParams, n.dim(), n.alpha(), n.convDim(),
                n.convAlpha()));
        lines.add(String.format(Locale.ROOT, "  optimizer: %s (%s), lr U-Net %s, text encoders %s; %s schedule%s;"
                        + " max_grad_norm %s", cfg.optim().type(), b.optimizer.metadataName(), cfg.optim().unetLr(),
                cfg.optim().textEncoderLr(), cfg.schedule().kind().flagName(),
                cfg.schedule().kind() == LrSchedule.Kind.COSINE ? " (num_cycles " + cfg.schedule().numCycles() + ")"
                        : cfg.schedule().stepRules() != null ? " (step_rules " + cfg.schedule().stepRules() + ")" : "",
                cfg.optim().maxGradNorm()));
        lines.add("  num train images * repeats: " + d.dataset().numTrainImages());
        if (cfg.paths().regDataDir() != null) {
            lines.add("  num reg images: " + d.dataset().numRegImages() + " (prior_loss_weight "
                    + cfg.loop().lossWeighting().priorLossWeight() + ")");
        }
        lines.add("  num batches per epoch: " + d.planner().microBatchesPerEpoch());
        lines.add("  num epochs: " + b.epochs);
        StringBuilder batchSizes = new StringBuilder();
        for (TrainConfig.Dataset ds : datasets) {
            batchSizes.append(batchSizes.isEmpty() ? "" : ", ").append(ds.batchSize());
        }
        lines.add("  batch size per device: " + batchSizes);
        lines.add("  gradient accumulation steps: " + cfg.loop().gradAccumSteps());
        lines.add("  total optimization steps: " + b.maxSteps);
        lines.add(String.format(Locale.ROOT, "  noise: %s, timesteps [%d, %d); gradient checkpointing %s; seed %d",
                cfg.loop().noise().describe(),
                cfg.loop().minTimestep(), cfg.loop().maxTimestep(), b.checkpointing.everyBlock() ? "on (every U-Net block)"
                        : b.checkpointing.isNone() ? "off" : "on for " + b.checkpointing,
                cfg.loop().seed()));
        if (cfg.loop().lossFunction().type() != tenmin.train.noise.LossFunction.Type.L2) {
            lines.add("  loss: " + cfg.loop().lossFunction().describe());
        }
        if (cfg.loop().lossWeighting().active()) {
            lines.add("  loss weighting: " + cfg.loop().lossWeighting().describe());
        }
        lines.add("  saves: " + (cfg.save().everyNSteps() > 0 ? "every " + cfg.save().everyNSteps() + " steps and " : "")
                + "at the end, " + cfg.save().precision() + ", in " + cfg.paths().outputDir());
        lines.add("  samples: " + (prompts == 0 ? "none"
                : prompts + " prompt(s)" + (cfg.sample().everyNSteps() > 0 ? " every " + cfg.sample().everyNSteps()
                + " steps" : "") + (cfg.sample().everyNEpochs() > 0 ? " every " + cfg.sample().everyNEpochs()
                + " epochs" : "")) + "; TensorBoard: " + (cfg.log().tensorboard() ? cfg.log().loggingDir() : "off"));
        for (String line : lines) {
            r.log(Reporter.Level.INFO, "INFO: " + line);
        }
    }

    /** Bytes of an in-memory latent cache: every image's latents (twice with flips), fp32. */
    private static long latentBytes(TrainingData data, SdxlConfig model, boolean flip) {
        long n = 0;
        for (int i = 0; i < data.imageCount(); i++) {
            var bucket = data.assignment(i).bucket();
            n += (long) model.latentChannels() * (bucket.height() / model.vaeScale()) * (bucket.width() / model.vaeScale());
        }
        return n * 4 * (flip ? 2 : 1);
    }

    /**
     * The dtypes the models run and are stored in: those of the device and {@code --mixed_precision} (fp32 on a CPU;
     * {@link #dtypesForTests} in their place), with {@code --fp8_base} the U-Net's weights as fp8, and the text
     * encoders' too unless their outputs are cached (the reference converts only text encoders that run on the GPU:
     * after caching it keeps them on the CPU, so the cached outputs come from the unconverted weights). On a CPU the
     * fp8 weights are cast to fp32 at each use: the GPU's weights, computed as the cpu backend computes everything.
     */
    static SdxlDtypes dtypes(TrainConfig cfg, tenmin.engine.api.Device device) {
        SdxlDtypes dtypes = dtypesForTests != null ? dtypesForTests : SdxlDtypes.of(device, cfg.loop().mixedPrecision());
        return cfg.loop().fp8Base() ? dtypes.withFp8Base(!cfg.data().cacheTextEncoderOutputs()) : dtypes;
    }

    /** {@code cfg} with the loop's seed replaced (a resumed run keeps the seed it started with). */
    static TrainConfig withSeed(TrainConfig cfg, long seed) {
        TrainConfig.Loop l = cfg.loop();
        TrainConfig.Loop loop = new TrainConfig.Loop(l.trainBatchSize(), l.gradAccumSteps(), l.maxTrainSteps(),
                l.maxTrainEpochs(), seed, true, l.mixedPrecision(), l.fp8Base(), l.gradientCheckpointing(), l.noHalfVae(),
                l.minTimestep(), l.maxTimestep(), l.noise(), l.checkpointing(), l.lossWeighting(),
                l.lossFunction(), l.vPrediction());
        Map<String, Object> flags = new LinkedHashMap<>(cfg.flags());
        flags.put("seed", seed);
        return new TrainConfig(cfg.paths(), cfg.data(), cfg.network(), cfg.optim(), cfg.schedule(), loop, cfg.save(),
                cfg.log(), cfg.sample(), cfg.compute(), flags);
    }

    /** What the pure-Java engine sustains per core in a training step (about half its matrix-product peak). */
    static final double CPU_FLOPS_PER_CORE = 50e9;

    /**
     * A warning when a run on the CPU would take more than an hour: {@code flopsPerMicroBatch} of matrix work
     * at {@link #CPU_FLOPS_PER_CORE} on {@code cores}, times {@code microBatches}.
     */
    static java.util.Optional<String> cpuWarning(double flopsPerMicroBatch, long microBatches, int cores) {
        double perMicroBatch = flopsPerMicroBatch / (CPU_FLOPS_PER_CORE * Math.max(1, cores));
        double total = perMicroBatch * microBatches;
        if (total < 3600) {
            return java.util.Optional.empty();
        }
        return java.util.Optional.of(String.format(Locale.ROOT, "WARNING: this run trains on the CPU (no GPU found, or"
                        + " --device cpu): one micro-batch is %.1f TFLOP of matrix work, about %s on %d cores, and the run"
                        + " has %,d micro-batches: about %s. The CPU path is for tests and the demo; train on an NVIDIA GPU"
                        + " (--device cuda, libtorch: see docs/ENGINE.md). Ctrl-C stops and saves.",
                flopsPerMicroBatch / 1e12, duration(perMicroBatch), cores, microBatches, duration(total)));
    }

    private static String duration(double seconds) {
        if (seconds < 120) {
            return String.format(Locale.ROOT, "%.0f s", seconds);
        }
        if (seconds < 7200) {
            return String.format(Locale.ROOT, "%.0f min", seconds / 60);
        }
        if (seconds < 172800) {
            return String.format(Locale.ROOT, "%.1f h", seconds / 3600);
        }
        return String.format(Locale.ROOT, "%.1f days", seconds / 86400);
    }

    /**
     * {@code --base_weights}: each file's modules added into their layers' frozen weights at the file's multiplier, as
     * kohya does before caching and before the network is created (LyCORIS {@code merge_to}); the sum is made in fp32
     * and stored in the weights' dtype.
     */
    static void mergeBaseWeights(List<LoraSet.Prepared> files, SdxlModels models, Scope process, Reporter r) {
        if (files.isEmpty()) {
            return;
        }
        try (LoraSet set = LoraSet.attach(files, models, process)) {
            set.merge();
        }
        for (LoraSet.Prepared p : files) {
            r.log(Reporter.Level.INFO, "INFO: merged " + p.spec().file() + " (" + p.modules().size() + " modules) into"
                    + " the base model with multiplier " + p.spec().strength());
        }
    }

    /**
     * One micro-batch of this run at the full resolution (the largest bucket area) with {@code policy}, planned on
     * shapes: what the device holds at the peak, activations included (bench train prints the same for its setups).
     * With several datasets, the micro-batch of the one with the most pixels per micro-batch (batch size × resolution
     * area; {@link #plannedDataset}).
     */
    static TrainBenchmark.Plan stepPlan(TrainConfig cfg, SdxlConfig model, SdxlDtypes dtypes, tenmin.engine.api.Device device,
                                        CheckpointPolicy policy) {
        return stepPlan(cfg, model, dtypes, device, policy, DeviceClybW.plannedSlots(cfg.optim().type(), device,
                cfg.loop().gradAccumSteps()));
    }

    /** As above with {@code deviceMomentSlots} optimizer buffers per LoCon value on the device. */
    static TrainBenchmark.Plan stepPlan(TrainConfig cfg, SdxlConfig model, SdxlDtypes dtypes, tenmin.engine.api.Device device,
                                        CheckpointPolicy policy, int deviceMomentSlots) {
        int multiple = model.latentMultiple();
        TrainConfig.Dataset worst = plannedDataset(cfg);
        int h = Math.max(multiple, worst.height() / model.vaeScale() / multiple * multiple);
        int w = Math.max(multiple, worst.width() / model.vaeScale() / multiple * multiple);
        TrainConfig.Network n = cfg.network();
        TrainBenchmark.Setup setup = new TrainBenchmark.Setup("this run", model, dtypes, worst.batchSize(), h, w,
                policy, n.trainTextEncoder(),
                new LoConRanks(n.dim(), n.alpha(), n.convDim(), n.convAlpha()), n.teModules(), cfg.loop().gradAccumSteps(),
                cfg.loop().seed(), n.dropout());
        return TrainBenchmark.plan(setup, device, deviceMomentSlots);
    }

    /**
     * The dataset whose micro-batch the step plan plans: the one with the most pixels per micro-batch (batch size ×
     * resolution area), the first of equals; the only one without several {@code [[datasets]]}.
     */
    static TrainConfig.Dataset plannedDataset(TrainConfig cfg) {
        TrainConfig.Dataset worst = null;
        for (TrainConfig.Dataset d : cfg.datasets()) {
            if (worst == null || (long) d.batchSize() * d.width() * d.height()
                    > (long) worst.batchSize() * worst.width() * worst.height()) {
                worst = d;
            }
        }
        return worst;
    }

    // ---- what the loop reads ----------------------------------------------------------------------

    TrainConfig config() {
        return config;
    }

    Scope process() {
        return process;
    }

    TrainingData data() {
        return data;
    }

    SdxlModels models() {
        return models;
    }

    /** The alpha masks ({@code --alpha_mask}), or null. */
    AlphaMasks alphaMasks() {
        return alphaMasks;
    }

    /** The text-encoder cache ({@code --cache_text_encoder_outputs}), or null. */
    TextEncoderCache textCache() {
        return textCache;
    }

    LatentCache cache() {
        return cache;
    }

    TrainableNetwork network() {
        return network;
    }

    Optimizer optimizer() {
        return optimizer;
    }

    /** The optimizer's state now, from the device when it steps there (a sync point then). */
    OptimizerState optimizerState() {
        return network.deviceOptimizer() != null ? network.deviceOptimizer().exportState() : optimizer.exportState();
    }

    LrSchedule schedule() {
        return schedule;
    }

    DdpmSchedule ddpm() {
        return ddpm;
    }

    TrainLogger logger() {
        return logger;
    }

    TrainingSamples samples() {
        return samples;
    }

    Checkpoints checkpoints() {
        return checkpoints;
    }

    Trainer.ResumePoint start() {
        return start;
    }

    long maxSteps() {
        return maxSteps;
    }

    int epochs() {
        return epochs;
    }

    String digest() {
        return digest;
    }

    Map<String, String> stateInfo() {
        return stateInfo;
    }

    Map<String, Path> outputs() {
        return outputs;
    }

    /** Wall time spent building (or checking) the latent cache, in nanoseconds. */
    long cachingNanos() {
        return cachingNanos;
    }

    PooledProjection pooledProjection() {
        return Trainer.pooledOf(config);
    }

    @Override
    public void close() throws IOException {
        try {
            if (checkpoints != null) {
                checkpoints.close();
            }
        } finally {
            if (logger != null) {
                logger.close();
            }
        }
    }
}
