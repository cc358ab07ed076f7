package tenmin.train;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The resolved, validated configuration of one {@code tenmin train} run: the reference trainer's flags
 * (and {@code --config_file} keys) turned into types, defaults applied, contradictions rejected. Built by
 * the CLI ({@code tenmin.cli.TrainArgs}); library code receives this record, never raw arguments.
 *
 * @param paths    files and folders
 * @param data     dataset, captions, buckets, latent cache
 * @param network  the LoCon network (LyCORIS {@code lycoris.kohya} arguments)
 * @param optim    optimizer, learning rates, clipping
 * @param schedule learning-rate schedule
 * @param loop     batching, steps, precision, noise, seed
 * @param save     output precision, cadence, metadata
 * @param log      TensorBoard logging
 * @param sample   sample images during training
 * @param compute  where the models run
 * @param flags    every flag's final value by flag name (for the printed config and {@code ss_*} metadata)
 */
public record TrainConfig(Paths paths, Data data, Network network, Optim optim, Schedule schedule, Loop loop,
                          Save save, Log log, Sample sample, Compute compute, Map<String, Object> flags) {

    public TrainConfig {
        flags = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(flags));
    }

    /** True for the built-in demo (no model and no dataset given). */
    public boolean demo() {
        return paths.pretrainedModel() == null && paths.trainDataDir() == null && data.subsets().isEmpty();
    }

    /** True when the base model is built with random weights (the demo, or {@code --random_model}). */
    public boolean randomBase() {
        return demo() || paths.randomModel() != null;
    }

    /**
     * @param pretrainedModel single-file SDXL checkpoint (null: demo)
     * @param trainDataDir    folder of {@code <repeats>_<name>} sub-folders (null: demo)
     * @param regDataDir      folder of regularisation images in the same layout ({@code --reg_data_dir}), or null
     * @param vae             a VAE file (LDM layout) used instead of the checkpoint's ({@code --vae}), or null
     * @param outputDir       where LoRA files, samples, state and logs go
     * @param outputName      base file name (null: kohya's {@code at} / {@code last})
     * @param resume          training-state file (or folder holding one) to continue from, or null
     * @param networkWeights  a LoCon/LoRA file whose weights the network starts from ({@code --network_weights}), or
     *                        null
     * @param modelConfig     sizes of a checkpoint that is not SDXL-sized (a JSON file with "unet", "te1", "te2",
     *                        "vae" sections, as the fixtures' config.json); null for SDXL
     * @param randomModel     instead of a checkpoint, a model of this size ({@code tenmin.sample.ModelSource}'s
     *                        random sizes) with random weights (benchmarks); null: none
     * @param baseWeights     LoRA files merged into the model's weights before training, each with its multiplier
     *                        ({@code --base_weights}, {@code --base_weights_multiplier}); empty: none
     */
    public record Paths(Path pretrainedModel, Path vae, Path trainDataDir, Path regDataDir, Path outputDir,
                        String outputName,
                        Path resume,
                        Path networkWeights, Path modelConfig, String randomModel,
                        List<tenmin.sample.LoraSpec> baseWeights) {
        public Paths {
            baseWeights = List.copyOf(baseWeights);
        }
    }

    /**
     * @param width, height  target resolution (bucket area) in pixels
     * @param enableBucket   aspect-ratio buckets (otherwise one bucket at the resolution)
     * @param minBucketReso  smallest bucket side
     * @param maxBucketReso  largest bucket side
     * @param bucketResoSteps bucket side granularity
     * @param bucketNoUpscale never upscale images into a bigger bucket
     * @param captionExtension caption file extension with its dot
     * @param captions       per-draw caption processing: prefix, suffix, shuffling, dropout
     * @param subsets        the image folders of a {@code --dataset_config} (empty: the {@code <repeats>_<name>}
     *                       folders of the data directories)
     * @param cacheTextEncoderOutputs encode every caption once before training ({@code --cache_text_encoder_outputs};
     *                       only with frozen text encoders and captions that do not change between draws)
     * @param maxTokenLength caption tokens the text encoders read: 75 (one window), 150 or 225
     *                       ({@code --max_token_length})
     * @param flipAug        random horizontal flips
     * @param alphaMask      the images' alpha channels mask the loss ({@code --alpha_mask})
     * @param maskedLoss     the subsets' conditioning images mask the loss ({@code --masked_loss})
     * @param randomCrop     a random window per draw ({@code --random_crop}; latents not cached)
     * @param colorAug       colour augmentation per draw ({@code --color_aug}; latents not cached)
     * @param cacheLatents   encode every image once before training
     * @param cacheLatentsToDisk keep the latent cache next to the images ({@code .npz})
     * @param vaeBatchSize   images per VAE call while caching
     * @param strict         a broken image or caption stops the run instead of being skipped
     * @param laterDatasets  the second and later {@code [[datasets]]} of a {@code --dataset_config}, each with its own
     *                       resolution, buckets, batch size and subsets (the first is the fields above with
     *                       {@link Loop#trainBatchSize}); empty for one dataset
     */
    public record Data(int width, int height, boolean enableBucket, int minBucketReso, int maxBucketReso,
                       int bucketResoSteps, boolean bucketNoUpscale, String captionExtension,
                       tenmin.train.data.CaptionOptions captions,
                       List<tenmin.train.data.DreamBoothDataset.SubsetSpec> subsets, boolean cacheTextEncoderOutputs,
                       int maxTokenLength, boolean flipAug, boolean alphaMask, boolean maskedLoss, boolean randomCrop,
                       boolean colorAug,
                       boolean cacheLatents, boolean cacheLatentsToDisk, int vaeBatchSize, boolean strict,
                       List<Dataset> laterDatasets) {
        public Data {
            laterDatasets = List.copyOf(laterDatasets);
        }

        /** One dataset: no later datasets. */
        public Data(int width, int height, boolean enableBucket, int minBucketReso, int maxBucketReso,
                    int bucketResoSteps, boolean bucketNoUpscale, String captionExtension,
                    tenmin.train.data.CaptionOptions captions,
                    List<tenmin.train.data.DreamBoothDataset.SubsetSpec> subsets, boolean cacheTextEncoderOutputs,
                    int maxTokenLength, boolean flipAug, boolean alphaMask, boolean maskedLoss, boolean randomCrop,
                    boolean colorAug, boolean cacheLatents, boolean cacheLatentsToDisk, int vaeBatchSize,
                    boolean strict) {
            this(width, height, enableBucket, minBucketReso, maxBucketReso, bucketResoSteps, bucketNoUpscale,
                    captionExtension, captions, subsets, cacheTextEncoderOutputs, maxTokenLength, flipAug, alphaMask,
                    maskedLoss, randomCrop, colorAug, cacheLatents, cacheLatentsToDisk, vaeBatchSize, strict, List.of());
        }
    }

    /**
     * One {@code [[datasets]]} entry of a {@code --dataset_config} (kohya's {@code DreamBoothDataset}): its images are
     * bucketed and batched on their own, a micro-batch never mixing datasets.
     *
     * @param width, height   target resolution (bucket area) in pixels
     * @param enableBucket    aspect-ratio buckets (otherwise one bucket at the resolution)
     * @param minBucketReso   smallest bucket side
     * @param maxBucketReso   largest bucket side
     * @param bucketResoSteps bucket side granularity
     * @param bucketNoUpscale never upscale images into a bigger bucket
     * @param batchSize       images per micro-batch ({@code batch_size})
     * @param subsets         its image folders
     */
    public record Dataset(int width, int height, boolean enableBucket, int minBucketReso, int maxBucketReso,
                          int bucketResoSteps, boolean bucketNoUpscale, int batchSize,
                          List<tenmin.train.data.DreamBoothDataset.SubsetSpec> subsets) {
        public Dataset {
            subsets = List.copyOf(subsets);
        }
    }

    /**
     * Every dataset of the run in order: the first from {@link #data} and {@link Loop#trainBatchSize} (the only one
     * without a {@code --dataset_config}), then {@link Data#laterDatasets}.
     */
    public List<Dataset> datasets() {
        List<Dataset> out = new java.util.ArrayList<>();
        out.add(new Dataset(data.width(), data.height(), data.enableBucket(), data.minBucketReso(),
                data.maxBucketReso(), data.bucketResoSteps(), data.bucketNoUpscale(), loop.trainBatchSize(),
                data.subsets()));
        out.addAll(data.laterDatasets());
        return out;
    }

    /**
     * @param module        {@code lycoris.kohya}
     * @param dim           linear (and 1x1 conv) rank
     * @param alpha         linear alpha
     * @param convDim       rank of k x k convolutions (0: not wrapped)
     * @param convAlpha     alpha of k x k convolutions
     * @param algo          LyCORIS algorithm ({@code locon})
     * @param preset        LyCORIS module preset ({@code full})
     * @param args          {@code --network_args} as given, key to string value, in order
     * @param trainUnet     U-Net LoRA trained
     * @param trainTextEncoder text-encoder LoRA trained
     * @param te2PooledKohya pooled TE2 output as sd-scripts computes it ({@code h·Pᵀ}) instead of SAI's {@code h·P}
     * @param teModules     which text-encoder layers preset {@code full} wraps: attention and MLP (264 modules on
     *                      SDXL, LyCORIS ≥ 3.1.1) or MLP only (88, the reference run's LyCORIS 3.1.0 with
     *                      transformers 4.44; trainer-spec §8.2)
     * @param dropout       LyCORIS's dropout, rank_dropout and module_dropout of every module while training
     */
    public record Network(String module, int dim, double alpha, int convDim, double convAlpha, String algo,
                          String preset, Map<String, String> args, boolean trainUnet, boolean trainTextEncoder,
                          boolean te2PooledKohya, tenmin.lora.LoConPreset.TextEncoderModules teModules,
                          tenmin.lora.LoConDropout dropout) {
        public Network {
            args = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(args));
            java.util.Objects.requireNonNull(dropout, "dropout");
        }
    }

    /**
     * @param type          optimizer as named by {@code --optimizer_type} (normalised, e.g. {@code ClybW})
     * @param args          {@code --optimizer_args} parsed as Python literals (Double, Long, Boolean, String, List)
     * @param learningRate  {@code --learning_rate}: the optimizer default lr
     * @param unetLr        U-Net group lr
     * @param textEncoderLr text-encoder group lr
     * @param maxGradNorm   global gradient-norm clip (0: off)
     * @param scaleWeightNorms max norm of each LoCon module's delta after every optimizer step
     *                      ({@code --scale_weight_norms}; 0: off)
     */
    public record Optim(String type, Map<String, Object> args, double learningRate, double unetLr,
                        double textEncoderLr, double maxGradNorm, double scaleWeightNorms) {
        public Optim {
            args = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(args));
        }
    }

    /**
     * @param kind        scheduler
     * @param warmupSteps warm-up: whole steps, or a ratio of the total when below 1 ({@code --lr_warmup_steps})
     * @param numCycles   cosine cycles ({@code --lr_scheduler_args num_cycles=...}) or restarts
     * @param power       polynomial power
     * @param lrEnd       polynomial final lr
     * @param args        {@code --lr_scheduler_args} as parsed
     * @param decaySteps  warmup_stable_decay's decay: whole steps, or a ratio of the total below 1
     *                    ({@code --lr_decay_steps})
     * @param minLrRatio  {@code --lr_scheduler_min_lr_ratio} (cosine_with_min_lr, warmup_stable_decay)
     * @param timescale   {@code --lr_scheduler_timescale} (inverse_sqrt; 0: its default)
     * @param stepRules   piecewise_constant's {@code --lr_scheduler_args step_rules=...} (null for the other kinds)
     */
    public record Schedule(tenmin.train.schedule.LrSchedule.Kind kind, double warmupSteps, double numCycles,
                           double power, double lrEnd, Map<String, Object> args, double decaySteps, double minLrRatio,
                           long timescale, tenmin.train.schedule.StepRules stepRules) {
        public Schedule {
            args = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(args));
        }

        /** Warm-up steps for a run of {@code totalSteps} (a ratio below 1 is a fraction of the run). */
        public long warmupFor(long totalSteps) {
            return stepsFor(warmupSteps, totalSteps);
        }

        private static long stepsFor(double steps, long totalSteps) {
            return steps > 0 && steps < 1 ? (long) (steps * totalSteps) : (long) steps;
        }

        /** The schedule for a run of {@code totalSteps} optimizer steps with optimizer default lr {@code lrInit}. */
        public tenmin.train.schedule.LrSchedule build(long totalSteps, double lrInit) {
            if (stepRules != null) {
                // the reference passes the piecewise schedule no warm-up (--lr_warmup_steps stays in the metadata)
                return tenmin.train.schedule.LrSchedule.piecewise(stepRules, totalSteps);
            }
            return new tenmin.train.schedule.LrSchedule(kind, warmupFor(totalSteps), totalSteps, numCycles, power, lrEnd,
                    lrInit, stepsFor(decaySteps, totalSteps), minLrRatio, timescale);
        }
    }

    /**
     * @param trainBatchSize   images per micro-batch
     * @param gradAccumSteps   micro-batches per optimizer step
     * @param maxTrainSteps    optimizer steps (overridden by maxTrainEpochs when that is set)
     * @param maxTrainEpochs   epochs (0: use maxTrainSteps)
     * @param seed             the run's seed (drawn at random and recorded when not given)
     * @param seedGiven        whether {@code --seed} was given
     * @param mixedPrecision   {@code no}, {@code fp16} or {@code bf16}
     * @param fp8Base          {@code --fp8_base}: the frozen U-Net's weights (and the text encoders', where they run in
     *                         the step) stored as float8 e4m3fn ({@link tenmin.models.SdxlDtypes#withFp8Base})
     * @param gradientCheckpointing recompute activations in backward
     * @param noHalfVae        VAE in fp32
     * @param minTimestep      smallest training timestep (inclusive)
     * @param maxTimestep      largest training timestep (exclusive)
     * @param noise            how the training noise is drawn: offset, pyramid, input perturbation
     * @param checkpointing    {@code --checkpointing}, or null (see {@link #checkpointingSpec})
     * @param lossWeighting    per-image loss weights from the timestep's SNR ({@code --min_snr_gamma},
     *                         {@code --debiased_estimation_loss})
     * @param lossFunction     the per-element loss ({@code --loss_type}, {@code --huber_schedule}, {@code --huber_c})
     * @param vPrediction      {@code --v_parameterization}: the model predicts v = √ᾱ·ε − √(1−ᾱ)·x0 (the target),
     *                         and samples are drawn with v-prediction
     */
    public record Loop(int trainBatchSize, int gradAccumSteps, long maxTrainSteps, int maxTrainEpochs, long seed,
                       boolean seedGiven, String mixedPrecision, boolean fp8Base, boolean gradientCheckpointing,
                       boolean noHalfVae,
                       int minTimestep, int maxTimestep, tenmin.train.noise.NoiseOptions noise, String checkpointing,
                       tenmin.train.noise.LossWeighting lossWeighting, tenmin.train.noise.LossFunction lossFunction,
                       boolean vPrediction) {
        /**
         * The U-Net blocks to checkpoint as asked: {@code checkpointing} ({@code --checkpointing}: all, none, a block
         * list, or auto, which the trainer resolves against the device's memory) or, when that is null, what the
         * reference's {@code --gradient_checkpointing} asks for: to save memory, which tenmin reads as auto (recompute
         * what does not fit: the same gradients bit for bit, all on a card without room to spare, all where no memory
         * figure exists), and none without it.
         */
        public String checkpointingSpec() {
            return checkpointing != null ? checkpointing
                    : gradientCheckpointing ? tenmin.models.sdxl.CheckpointPolicy.AUTO : "none";
        }
    }

    /**
     * @param precision       stored dtype: {@code float}, {@code fp16} or {@code bf16}
     * @param everyNSteps     save every N optimizer steps (0: off)
     * @param everyNEpochs    save every N epochs (0: off)
     * @param lastNSteps      keep only saves of the last N steps (0: keep all)
     * @param lastNEpochs     keep only the last N epoch saves (0: keep all)
     * @param lastNStepsState keep only the resume states of the last N steps (0: as {@code lastNSteps})
     * @param lastNEpochsState keep only the last N epochs' resume states (0: as {@code lastNEpochs})
     * @param nEpochRatio     save about this many times over the run: every ⌊epochs / N⌋ epochs, at least every
     *                        epoch, in place of {@code everyNEpochs} (0: off)
     * @param saveState       also write a resume state beside every step and epoch save ({@code --save_state});
     *                        one is always written with the final save, on Ctrl-C and on divergence
     * @param noMetadata      write no ss_* metadata
     * @param trainingComment {@code ss_training_comment}
     * @param modelspec       modelspec overrides: title, author, description, license, tags (absent when not given)
     */
    public record Save(String precision, int everyNSteps, int everyNEpochs, int lastNSteps, int lastNEpochs,
                       int lastNStepsState, int lastNEpochsState, int nEpochRatio, boolean saveState, boolean noMetadata,
                       String trainingComment, Map<String, String> modelspec) {
        public Save {
            modelspec = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(modelspec));
        }

        /**
         * The epoch save cadence of a run of {@code epochs} epochs: kohya's {@code --save_n_epoch_ratio} (when set,
         * {@code ⌊epochs / ratio⌋ or 1}) or {@code --save_every_n_epochs}; 0: no epoch saves.
         */
        public int epochCadence(int epochs) {
            return nEpochRatio > 0 ? Math.max(1, epochs / nEpochRatio) : everyNEpochs;
        }
    }

    /**
     * @param tensorboard       write TensorBoard event files
     * @param loggingDir        root of the log folders
     * @param logPrefix         prefix of the run folder's timestamp
     * @param trackerName       sub-folder of the run ({@code network_train})
     * @param referenceLrTags   reproduce the reference's tag quirk (only {@code lr/unet}, holding the U-Net lr)
     */
    public record Log(boolean tensorboard, Path loggingDir, String logPrefix, String trackerName,
                      boolean referenceLrTags) {
    }

    /**
     * @param prompts      prompt file (null: no samples)
     * @param sampler      sampler name ({@code euler_a})
     * @param everyNSteps  sample every N optimizer steps (0: off)
     * @param everyNEpochs sample every N epochs (0: off)
     * @param atFirst      sample before the first step
     */
    public record Sample(Path prompts, String sampler, int everyNSteps, int everyNEpochs, boolean atFirst) {
    }

    /**
     * Where the models run: the device (null: a GPU when the libtorch backend finds one, else the CPU) and,
     * on the CPU backend, the worker threads (0: every processor). The stored dtypes follow from the device
     * and {@link Loop#mixedPrecision()} (bf16/fp16 frozen weights on a GPU, fp32 on the CPU).
     *
     * @param device     {@code cpu}, {@code cuda:N}, or null for automatic
     * @param cpuThreads CPU backend threads (0: all)
     */
    public record Compute(tenmin.engine.api.Device device, int cpuThreads) {
    }

    /** The flags explicitly given (command line or config file), for {@code ss_*} and the start log. */
    public List<String> flagNames() {
        return List.copyOf(flags.keySet());
    }
}
