package tenmin.train.save;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.PyFormat;
import tenmin.train.TrainConfig;
import tenmin.train.data.Buckets;

/**
 * The {@code __metadata__} kohya sd-scripts writes into a LoRA (trainer-spec §9.3): the {@code ss_*} keys
 * with values as Python's {@code str()} renders them (JSON-valued ones as JSON strings), the modelspec
 * keys, in the reference's order. {@code sshs_model_hash} is added by {@link LoraFileWriter}.
 */
public final class TrainingMetadata {
    private TrainingMetadata() {
    }

    /** One dataset folder as {@code ss_dataset_dirs} records it. */
    public record DatasetDir(String name, int repeats, int imageCount, boolean reg, String classTokens,
                             tenmin.train.data.CaptionOptions captions) {

        /** A training-image folder. */
        public DatasetDir(String name, int repeats, int imageCount) {
            this(name, repeats, imageCount, false);
        }

        /** A folder whose captions are processed as the run's. */
        public DatasetDir(String name, int repeats, int imageCount, boolean reg) {
            this(name, repeats, imageCount, reg, "", null);
        }
    }

    /**
     * Facts of the run fixed before training.
     *
     * @param sessionId           random session id ({@code ss_session_id})
     * @param startedAtSeconds    unix time the run started
     * @param numTrainImages      images × repeats
     * @param numBatchesPerEpoch  micro-batches per epoch
     * @param numEpochs           epochs of the run
     * @param maxTrainSteps       optimizer steps of the run
     * @param dirs                the dataset folders
     * @param tagFrequency        per folder, tag → count
     * @param bucketInfoJson      {@link #bucketInfo} (null without buckets)
     * @param sdModelName         base model file name
     * @param sdModelHash         {@link ModelHashes#legacyModelHash}
     * @param newSdModelHash      {@link ModelHashes#fileSha256}
     * @param trainerVersion      what goes into {@code ss_sd_scripts_commit_hash} (tenmin's version)
     * @param optimizerName       the optimizer's module.class name
     * @param vae                 the separate VAE ({@code --vae}), or null
     * @param datasets            per dataset of a {@code --dataset_config}, what {@code ss_datasets} records; empty: one
     *                            dataset, described by the fields above and the configuration
     */
    public record Run(long sessionId, double startedAtSeconds, int numTrainImages, int numBatchesPerEpoch,
                      int numEpochs, long maxTrainSteps, List<DatasetDir> dirs,
                      Map<String, Map<String, Integer>> tagFrequency, String bucketInfoJson, String sdModelName,
                      String sdModelHash, String newSdModelHash, String trainerVersion, String optimizerName,
                      Vae vae, List<DatasetInfo> datasets) {

        public Run {
            datasets = List.copyOf(datasets);
        }

        /** A run whose one dataset the fields and the configuration describe. */
        public Run(long sessionId, double startedAtSeconds, int numTrainImages, int numBatchesPerEpoch, int numEpochs,
                   long maxTrainSteps, List<DatasetDir> dirs, Map<String, Map<String, Integer>> tagFrequency,
                   String bucketInfoJson, String sdModelName, String sdModelHash, String newSdModelHash,
                   String trainerVersion, String optimizerName, Vae vae) {
            this(sessionId, startedAtSeconds, numTrainImages, numBatchesPerEpoch, numEpochs, maxTrainSteps, dirs,
                    tagFrequency, bucketInfoJson, sdModelName, sdModelHash, newSdModelHash, trainerVersion, optimizerName,
                    vae, List.of());
        }

        /** A run with the checkpoint's own VAE. */
        public Run(long sessionId, double startedAtSeconds, int numTrainImages, int numBatchesPerEpoch, int numEpochs,
                   long maxTrainSteps, List<DatasetDir> dirs, Map<String, Map<String, Integer>> tagFrequency,
                   String bucketInfoJson, String sdModelName, String sdModelHash, String newSdModelHash,
                   String trainerVersion, String optimizerName) {
            this(sessionId, startedAtSeconds, numTrainImages, numBatchesPerEpoch, numEpochs, maxTrainSteps, dirs,
                    tagFrequency, bucketInfoJson, sdModelName, sdModelHash, newSdModelHash, trainerVersion, optimizerName,
                    null);
        }

        /** Regularisation images × their folders' repeats, as found (the reference's {@code num_reg_images}). */
        public int numRegImages() {
            int n = 0;
            for (DatasetDir d : dirs) {
                n += d.reg() ? d.repeats() * d.imageCount() : 0;
            }
            return n;
        }
    }

    /**
     * One dataset of a {@code --dataset_config} as an {@code ss_datasets} entry records it (the reference's
     * {@code dataset_metadata}).
     *
     * @param batchSize      images per micro-batch
     * @param numTrainImages training images × repeats
     * @param numRegImages   regularisation images × their folders' repeats, as found
     * @param tagFrequency   per folder, tag → count
     * @param bucketInfoJson {@link #bucketInfo} (null without buckets)
     * @param dirs           its subsets
     */
    public record DatasetInfo(int batchSize, int numTrainImages, int numRegImages, int width, int height,
                              boolean enableBucket, int minBucketReso, int maxBucketReso,
                              Map<String, Map<String, Integer>> tagFrequency, String bucketInfoJson,
                              List<DatasetDir> dirs) {
    }

    /**
     * A separate VAE as the reference records it: {@code ss_vae_name} (the file name), {@code ss_vae_hash} (the legacy
     * hash) and {@code ss_new_vae_hash} (SHA-256).
     */
    public record Vae(String name, String hash, String newHash) {
    }

    /** The keys of the reference's branch without {@code --dataset_config}: one folder-layout dataset. */
    private static void folderKeys(Map<String, String> m, TrainConfig c, Run run) {
        m.put("ss_batch_size_per_device", Integer.toString(c.loop().trainBatchSize()));
        m.put("ss_total_batch_size", Integer.toString(c.loop().trainBatchSize() * c.loop().gradAccumSteps()));
        m.put("ss_resolution", "(" + c.data().width() + ", " + c.data().height() + ")");
        m.put("ss_color_aug", PyStr.str(c.data().colorAug()));
        m.put("ss_flip_aug", PyStr.str(c.data().flipAug()));
        m.put("ss_random_crop", PyStr.str(c.data().randomCrop()));
        m.put("ss_shuffle_caption", PyStr.str(c.data().captions().shuffle()));
        m.put("ss_enable_bucket", PyStr.str(c.data().enableBucket()));
        m.put("ss_bucket_no_upscale", PyStr.str(c.data().bucketNoUpscale()));
        m.put("ss_min_bucket_reso", Integer.toString(c.data().minBucketReso()));
        m.put("ss_max_bucket_reso", Integer.toString(c.data().maxBucketReso()));
        m.put("ss_keep_tokens", Integer.toString(c.data().captions().keepTokens()));
        Map<String, Object> dirs = new LinkedHashMap<>();
        Map<String, Object> regDirs = new LinkedHashMap<>();
        for (DatasetDir d : run.dirs()) {
            Map<String, Object> one = new LinkedHashMap<>();
            one.put("n_repeats", d.repeats());
            one.put("img_count", d.imageCount());
            (d.reg() ? regDirs : dirs).put(d.name(), one);
        }
        m.put("ss_dataset_dirs", PyStr.json(dirs));
        m.put("ss_reg_dataset_dirs", PyStr.json(regDirs));
        m.put("ss_tag_frequency", PyStr.json(run.tagFrequency()));
        m.put("ss_bucket_info", run.bucketInfoJson() == null ? "null" : run.bucketInfoJson());
    }

    /**
     * The keys of the reference's {@code --dataset_config} branch: {@code ss_datasets} (per dataset its batch size,
     * image counts, resolution, buckets, tag frequency, bucket info and subsets), and {@code ss_tag_frequency} and
     * {@code ss_dataset_dirs} merged over the datasets (tag counts of a folder name from the first dataset that has it;
     * training subsets only, a repeated folder name numbered).
     */
    private static void datasetConfigKeys(Map<String, String> m, TrainConfig c, Run run) {
        List<DatasetInfo> infos = run.datasets().isEmpty()
                ? List.of(new DatasetInfo(c.loop().trainBatchSize(), run.numTrainImages(), run.numRegImages(),
                        c.data().width(), c.data().height(), c.data().enableBucket(), c.data().minBucketReso(),
                        c.data().maxBucketReso(), run.tagFrequency(), run.bucketInfoJson(), run.dirs()))
                : run.datasets();
        List<Object> datasets = new ArrayList<>();
        Map<String, Object> dirs = new LinkedHashMap<>();
        for (DatasetInfo info : infos) {
            List<Object> subsets = new ArrayList<>();
            for (DatasetDir d : info.dirs()) {
                subsets.add(subsetEntry(c, d));
                if (!d.reg()) {
                    String name = d.name();
                    for (int i = 2; dirs.containsKey(name); i++) {
                        name = d.name() + " (" + i + ")";
                    }
                    Map<String, Object> one = new LinkedHashMap<>();
                    one.put("n_repeats", d.repeats());
                    one.put("img_count", d.imageCount());
                    dirs.put(name, one);
                }
            }
            Map<String, Object> dataset = new LinkedHashMap<>();
            dataset.put("is_dreambooth", true);
            dataset.put("batch_size_per_device", info.batchSize());
            dataset.put("num_train_images", info.numTrainImages());
            dataset.put("num_reg_images", info.numRegImages());
            dataset.put("resolution", List.of(info.width(), info.height()));
            dataset.put("enable_bucket", info.enableBucket());
            dataset.put("min_bucket_reso", info.minBucketReso());
            dataset.put("max_bucket_reso", info.maxBucketReso());
            dataset.put("tag_frequency", info.tagFrequency());
            dataset.put("bucket_info", info.bucketInfoJson() == null ? null
                    : new tenmin.core.PyJson.Raw(info.bucketInfoJson()));
            dataset.put("subsets", subsets);
            datasets.add(dataset);
        }
        m.put("ss_datasets", PyStr.json(datasets));
        m.put("ss_tag_frequency", PyStr.json(run.tagFrequency()));   // merged over the datasets (TrainingData)
        m.put("ss_dataset_dirs", PyStr.json(dirs));
    }

    /** One subset of {@code ss_datasets}; the augmentation switches are the run's (every subset agrees on them). */
    private static Map<String, Object> subsetEntry(TrainConfig c, DatasetDir d) {
        tenmin.train.data.CaptionOptions o = d.captions() != null ? d.captions() : c.data().captions();
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("img_count", d.imageCount());
        s.put("num_repeats", d.repeats());
        s.put("color_aug", c.data().colorAug());
        s.put("flip_aug", c.data().flipAug());
        s.put("random_crop", c.data().randomCrop());
        s.put("shuffle_caption", o.shuffle());
        s.put("keep_tokens", o.keepTokens());
        s.put("keep_tokens_separator", o.keepTokensSeparator());
        s.put("secondary_separator", o.secondarySeparator());
        s.put("enable_wildcard", o.wildcard());
        s.put("caption_prefix", o.prefix());
        s.put("caption_suffix", o.suffix());
        s.put("image_dir", d.name());
        s.put("class_tokens", d.classTokens().isEmpty() ? null : d.classTokens());
        s.put("is_reg", d.reg());
        return s;
    }

    /**
     * {@code ss_bucket_info}: {@code {"buckets": {"<i>": {"resolution": [w, h], "count": n}}, "mean_img_ar_error": e}}
     * where {@code i} counts only the buckets in use, sorted by (w, h): the reference's {@code BucketManager}
     * holds only the buckets images were assigned to ({@code add_if_new_reso}) and {@code sort()}s them before
     * enumerating, so the keys run 0, 1, 2, ... whatever the predefined bucket list is.
     */
    public static String bucketInfo(List<Buckets.Reso> allBuckets, Map<Buckets.Reso, Integer> counts,
                                    double meanImgArError) {
        Map<String, Object> buckets = new LinkedHashMap<>();
        int index = 0;
        for (Buckets.Reso r : Buckets.sorted(allBuckets)) {
            Integer n = counts.get(r);
            if (n != null && n > 0) {
                Map<String, Object> b = new LinkedHashMap<>();
                b.put("resolution", List.of(r.width(), r.height()));
                b.put("count", n);
                buckets.put(Integer.toString(index++), b);
            }
        }
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("buckets", buckets);
        info.put("mean_img_ar_error", meanImgArError);
        return PyStr.json(info);
    }

    /**
     * The metadata of one save.
     *
     * @param c               the run's config
     * @param run             facts of the run
     * @param finishedSeconds unix time of this save
     * @param steps           global step of this save
     * @param epoch           0-based epoch for step saves; the number of epochs for the final save
     * @param zone            time zone of {@code modelspec.date} (the machine's, as the reference)
     */
    public static Map<String, String> build(TrainConfig c, Run run, double finishedSeconds, long steps, int epoch,
                                            ZoneId zone) {
        Map<String, Object> f = c.flags();
        Map<String, String> m = new LinkedHashMap<>();
        m.put("ss_session_id", Long.toString(run.sessionId()));
        m.put("ss_training_started_at", PyFormat.repr(run.startedAtSeconds()));
        m.put("ss_output_name", PyStr.str(c.paths().outputName()));
        m.put("ss_learning_rate", PyStr.str(c.optim().learningRate()));
        m.put("ss_text_encoder_lr", PyStr.str(f.get("text_encoder_lr")));
        m.put("ss_unet_lr", PyStr.str(f.get("unet_lr")));
        m.put("ss_num_train_images", Integer.toString(run.numTrainImages()));
        m.put("ss_num_reg_images", Integer.toString(run.numRegImages()));
        m.put("ss_num_batches_per_epoch", Integer.toString(run.numBatchesPerEpoch()));
        m.put("ss_num_epochs", Integer.toString(run.numEpochs()));
        m.put("ss_gradient_checkpointing", PyStr.str(c.loop().gradientCheckpointing()));
        m.put("ss_gradient_accumulation_steps", Integer.toString(c.loop().gradAccumSteps()));
        m.put("ss_max_train_steps", Long.toString(run.maxTrainSteps()));
        m.put("ss_lr_warmup_steps", intOrFloat(c.schedule().warmupSteps()));
        m.put("ss_lr_scheduler", c.schedule().kind().flagName());
        m.put("ss_network_module", c.network().module());
        m.put("ss_network_dim", Integer.toString(c.network().dim()));
        m.put("ss_network_alpha", PyStr.str(c.network().alpha()));
        m.put("ss_network_dropout", PyStr.str(f.get("network_dropout")));
        m.put("ss_mixed_precision", c.loop().mixedPrecision());
        m.put("ss_full_fp16", "False");
        m.put("ss_v2", "False");
        m.put("ss_base_model_version", "sdxl_base_v1-0");
        m.put("ss_clip_skip", PyStr.str(f.get("clip_skip")));
        m.put("ss_max_token_length", PyStr.str(f.get("max_token_length")));
        m.put("ss_cache_latents", PyStr.str(c.data().cacheLatents()));
        m.put("ss_seed", Long.toString(c.loop().seed()));
        m.put("ss_lowram", PyStr.str(f.get("lowram")));
        m.put("ss_noise_offset", PyStr.str(f.get("noise_offset")));
        m.put("ss_multires_noise_iterations", PyStr.str(f.get("multires_noise_iterations")));
        m.put("ss_multires_noise_discount", PyStr.str(c.loop().noise().multiresDiscount()));
        m.put("ss_adaptive_noise_scale", PyStr.str(f.get("adaptive_noise_scale")));
        m.put("ss_zero_terminal_snr", PyStr.str(c.loop().noise().zeroTerminalSnr()));
        m.put("ss_training_comment", PyStr.str(c.save().trainingComment()));
        m.put("ss_sd_scripts_commit_hash", run.trainerVersion());
        m.put("ss_optimizer", optimizerString(run.optimizerName(), c.optim().args()));
        m.put("ss_max_grad_norm", PyStr.str(c.optim().maxGradNorm()));
        m.put("ss_caption_dropout_rate", PyStr.str(c.data().captions().dropoutRate()));
        m.put("ss_caption_dropout_every_n_epochs", Integer.toString(c.data().captions().dropoutEveryNEpochs()));
        m.put("ss_caption_tag_dropout_rate", PyStr.str(c.data().captions().tagDropoutRate()));
        m.put("ss_face_crop_aug_range", "None");
        m.put("ss_prior_loss_weight", PyStr.str(f.get("prior_loss_weight")));
        m.put("ss_min_snr_gamma", PyStr.str(f.get("min_snr_gamma")));
        m.put("ss_scale_weight_norms", PyStr.str(f.get("scale_weight_norms")));
        m.put("ss_ip_noise_gamma", PyStr.str(f.get("ip_noise_gamma")));
        m.put("ss_debiased_estimation", PyStr.str(c.loop().lossWeighting().debiased()));
        m.put("ss_noise_offset_random_strength", PyStr.str(c.loop().noise().offsetRandomStrength()));
        m.put("ss_ip_noise_gamma_random_strength", PyStr.str(c.loop().noise().ipRandomStrength()));
        m.put("ss_loss_type", c.loop().lossFunction().type().flagName());
        m.put("ss_huber_schedule", PyStr.str(f.get("huber_schedule")));
        m.put("ss_huber_c", PyStr.str(f.get("huber_c")));
        if (!c.data().subsets().isEmpty()) {
            datasetConfigKeys(m, c, run);
        } else {
            folderKeys(m, c, run);
        }
        if (!c.network().args().isEmpty()) {
            Map<String, Object> netArgs = new LinkedHashMap<>(c.network().args());
            // kohya's "workaround for LyCORIS": network_dropout (None when not given) joins the args unless
            // they name a dropout themselves
            netArgs.putIfAbsent("dropout", f.get("network_dropout"));
            m.put("ss_network_args", PyStr.json(netArgs));
        }
        m.put("ss_sd_model_name", run.sdModelName());
        m.put("ss_sd_model_hash", run.sdModelHash());
        m.put("ss_new_sd_model_hash", run.newSdModelHash());
        if (run.vae() != null) {
            m.put("ss_vae_name", run.vae().name());
            m.put("ss_vae_hash", run.vae().hash());
            m.put("ss_new_vae_hash", run.vae().newHash());
        }
        m.put("ss_training_finished_at", PyFormat.repr(finishedSeconds));
        m.put("ss_steps", Long.toString(steps));
        m.put("ss_epoch", Integer.toString(epoch));
        // modelspec (sai_model_spec.build_metadata for an SDXL LoRA); its timestamp is taken at each save
        // (get_sai_model_spec calls time.time()), so title and date are those of the save, not of the start
        m.put("modelspec.sai_model_spec", "1.0.0");
        m.put("modelspec.architecture", "stable-diffusion-xl-v1-base/lora");
        m.put("modelspec.implementation", "https://github.com/Stability-AI/generative-models");
        Map<String, String> spec = c.save().modelspec();
        String title = spec.containsKey("title") ? spec.get("title")
                : c.paths().outputName() != null ? c.paths().outputName() : "LoRA@" + PyFormat.repr(finishedSeconds);
        m.put("modelspec.title", title);
        for (String k : List.of("author", "description", "license", "tags")) {
            if (spec.containsKey(k)) {
                m.put("modelspec." + k, spec.get(k));
            }
        }
        LocalDateTime date = LocalDateTime.ofInstant(Instant.ofEpochSecond((long) finishedSeconds), zone);
        m.put("modelspec.date", date.format(DateTimeFormatter.ISO_LOCAL_DATE_TIME));
        m.put("modelspec.resolution", c.data().width() + "x" + c.data().height());
        m.put("modelspec.prediction_type", c.loop().vPrediction() ? "v" : "epsilon");
        Object minT = f.get("min_timestep");
        Object maxT = f.get("max_timestep");
        if (minT != null || maxT != null) {
            m.put("modelspec.timestep_range", (minT == null ? "0" : PyStr.str(minT)) + ","
                    + (maxT == null ? "1000" : PyStr.str(maxT)));
        }
        if (f.get("clip_skip") != null) {
            m.put("modelspec.encoder_layer", PyStr.str(f.get("clip_skip")));
        }
        return m;
    }

    /** kohya's {@code SS_METADATA_MINIMUM_KEYS}: what {@code --no_metadata} still writes (with the modelspec keys). */
    public static final List<String> MINIMUM_KEYS = List.of("ss_v2", "ss_base_model_version", "ss_network_module",
            "ss_network_dim", "ss_network_alpha", "ss_network_args");

    /**
     * The metadata a save writes: {@link #build} in full, or with {@code --no_metadata} what kohya still writes
     * then ({@link #MINIMUM_KEYS} present in the full set, plus every {@code modelspec.*} key, which
     * {@code save_model} adds to either).
     */
    public static Map<String, String> forSave(TrainConfig c, Run run, double finishedSeconds, long steps, int epoch,
                                              ZoneId zone) {
        Map<String, String> full = build(c, run, finishedSeconds, steps, epoch, zone);
        if (!c.save().noMetadata()) {
            return full;
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : full.entrySet()) {
            if (MINIMUM_KEYS.contains(e.getKey()) || e.getKey().startsWith("modelspec.")) {
                m.put(e.getKey(), e.getValue());
            }
        }
        return m;
    }

    /** kohya's {@code ss_optimizer}: {@code module.Class} plus {@code (k=v,...)} when optimizer args were given. */
    static String optimizerString(String name, Map<String, Object> args) {
        if (args.isEmpty()) {
            return name;
        }
        List<String> parts = new ArrayList<>();
        for (Map.Entry<String, Object> e : args.entrySet()) {
            parts.add(e.getKey() + "=" + PyStr.str(e.getValue()));
        }
        return name + "(" + String.join(",", parts) + ")";
    }

    private static String intOrFloat(double v) {
        return v == Math.rint(v) && v < 1e15 ? Long.toString((long) v) : PyFormat.repr(v);
    }
}
