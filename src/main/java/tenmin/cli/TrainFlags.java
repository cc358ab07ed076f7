package tenmin.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every flag {@code tenmin train} accepts: the reference trainer's ({@code sdxl_train_network.py} of
 * kohya sd-scripts) under the same names and types, plus a few of tenmin's own. This table is the one
 * place for defaults (kohya's, unless said otherwise); each line says what the flag does here.
 *
 * <p>Effects: {@code USED} flags drive tenmin; {@code NO_EFFECT} flags are accepted so the reference's
 * command lines run unchanged, and a warning says once that they do nothing here; {@code NEUTRAL_ONLY}
 * flags are features tenmin does not implement: accepted at their neutral default, an error otherwise
 * (never silently ignored).
 */
final class TrainFlags {
    private TrainFlags() {
    }

    enum Kind { BOOL, INT, FLOAT, STRING, LIST }

    enum Effect { USED, NO_EFFECT, NEUTRAL_ONLY }

    /** One flag: name without dashes, type, default (null: unset), effect, and a one-line description. */
    record Flag(String name, Kind kind, Object def, Effect effect, String help) {
    }

    private static Flag used(String name, Kind kind, Object def, String help) {
        return new Flag(name, kind, def, Effect.USED, help);
    }

    private static Flag noEffect(String name, Kind kind, Object def, String why) {
        return new Flag(name, kind, def, Effect.NO_EFFECT, why);
    }

    private static Flag neutral(String name, Kind kind, Object def, String what) {
        return new Flag(name, kind, def, Effect.NEUTRAL_ONLY, what);
    }

    static final List<Flag> ALL = List.of(
            // ---- model, data, output
            used("pretrained_model_name_or_path", Kind.STRING, null, "SDXL single-file checkpoint (.safetensors); none: built-in demo"),
            used("dataset_config", Kind.STRING, null, "kohya dataset config (.toml): [general], [[datasets]] (each with"
                    + " its own resolution, batch_size and buckets) and their [[datasets.subsets]] (image_dir, num_repeats, class_tokens, is_reg, caption options); replaces"
                    + " --train_data_dir and --reg_data_dir"),
            used("vae", Kind.STRING, null, "a VAE file (LDM layout, e.g. sdxl_vae.safetensors, with or without the"
                    + " first_stage_model. prefix) used instead of the checkpoint's for caching latents and samples"),
            used("train_data_dir", Kind.STRING, null, "folder of <repeats>_<name> image folders; none: built-in demo"),
            used("output_dir", Kind.STRING, null, "where LoRA files, samples, state and logs go (demo: ./tenmin-demo)"),
            used("output_name", Kind.STRING, null, "base name of saved files (kohya's default: at-stepNNNNNNNN / last)"),
            used("output_config", Kind.BOOL, false, "write the command line's flags to the --config_file path (TOML)"
                    + " and exit without training"),
            used("config_file", Kind.STRING, null, "TOML file whose keys are these flag names (sections are flattened); the command line wins"),
            used("resume", Kind.STRING, null, "training-state file (or the folder of the run) to continue from"),
            used("seed", Kind.INT, null, "random seed; drawn at random and recorded when absent"),
            used("random_model", Kind.STRING, null, "tenmin: train a randomly initialised SDXL-architecture model of this"
                    + " size (sdxl, small or tiny) instead of a checkpoint, on --train_data_dir: for benchmarks"),
            used("model_config", Kind.STRING, null, "tenmin: JSON with unet/te1/te2/vae sections for a checkpoint that is not SDXL-sized (tiny test models)"),
            used("device", Kind.STRING, "auto", "tenmin: cpu (pure-Java backend), cuda, cuda:N (libtorch backend) or auto (the first GPU libtorch finds, else cpu)"),
            used("cpu_threads", Kind.INT, 0L, "tenmin: threads of the CPU backend (0: every processor)"),
            // ---- resolution and buckets
            used("resolution", Kind.STRING, "1024,1024", "training resolution 'W,H' or 'N' (bucket area; kohya has no default, SDXL is trained at 1024)"),
            used("enable_bucket", Kind.BOOL, false, "aspect-ratio buckets"),
            used("min_bucket_reso", Kind.INT, 256L, "smallest bucket side"),
            used("max_bucket_reso", Kind.INT, 1024L, "largest bucket side"),
            used("bucket_reso_steps", Kind.INT, 64L, "bucket side granularity (multiple of 8)"),
            used("bucket_no_upscale", Kind.BOOL, false, "never enlarge an image to fit a bucket"),
            // ---- captions
            used("reg_data_dir", Kind.STRING, null, "folder of regularisation (class) images in <repeats>_<name>"
                    + " folders, balanced against the training images × repeats as the reference does"),
            used("prior_loss_weight", Kind.FLOAT, 1.0, "weight of a regularisation image's loss"),
            used("caption_extension", Kind.STRING, ".caption", "caption file extension (the guide uses .txt)"),
            used("caption_extention", Kind.STRING, null, "the reference's old spelling of --caption_extension, which it"
                    + " replaces when given"),
            used("caption_prefix", Kind.STRING, null, "text put before every caption"),
            used("caption_suffix", Kind.STRING, null, "text put after every caption"),
            used("shuffle_caption", Kind.BOOL, false, "shuffle the comma-separated tags of a caption at every draw"),
            used("keep_tokens", Kind.INT, 0L, "leading tags kept in place when shuffling"),
            used("caption_separator", Kind.STRING, ",", "tag separator for --shuffle_caption"),
            used("keep_tokens_separator", Kind.STRING, "", "e.g. '|||' in a caption: the tags before it stay in front"
                    + " (and those after a second one at the end) when shuffling, in place of --keep_tokens"),
            used("secondary_separator", Kind.STRING, null, "e.g. ';;;': joins tags that shuffle as one; replaced by"
                    + " --caption_separator afterwards"),
            used("max_token_length", Kind.INT, null, "150 or 225: captions up to that many tokens, read by the text"
                    + " encoders in 75-token windows (absent: 75)"),
            used("enable_wildcard", Kind.BOOL, false, "caption files are read whole; each draw takes one of their lines and"
                    + " replaces every {a|b|c} by one choice"),
            used("caption_dropout_rate", Kind.FLOAT, 0.0, "chance that a draw's caption is empty (the LoRA also"
                    + " learns the concept unconditioned)"),
            used("caption_dropout_every_n_epochs", Kind.INT, 0L, "every caption of every Nth epoch is empty (0: off)"),
            used("caption_tag_dropout_rate", Kind.FLOAT, 0.0, "chance that each shuffled (not kept) tag is left out of"
                    + " a draw's caption"),
            used("token_warmup_min", Kind.INT, 1L, "token warm-up: tags (after the kept ones) a caption starts with"),
            used("token_warmup_step", Kind.FLOAT, 0.0, "token warm-up: the step (a fraction of --max_train_steps when"
                    + " below 1) at which captions reach all their tags, growing linearly from --token_warmup_min"
                    + " (0: off)"),
            used("alpha_mask", Kind.BOOL, false, "the images' alpha channels mask the loss (transparent parts teach"
                    + " nothing; images without alpha count fully)"),
            used("flip_aug", Kind.BOOL, false, "random horizontal flips (cached for both orientations)"),
            used("strict", Kind.BOOL, false, "tenmin: a broken image or unreadable caption stops the run instead of being skipped"),
            // ---- latents
            used("cache_latents", Kind.BOOL, false, "encode every image once before training"),
            used("cache_latents_to_disk", Kind.BOOL, false, "keep the latent cache next to the images (implies --cache_latents)"),
            used("cache_text_encoder_outputs", Kind.BOOL, false, "encode every caption once before training (only with"
                    + " --network_train_unet_only and captions that do not change between draws)"),
            used("cache_text_encoder_outputs_to_disk", Kind.BOOL, false, "as --cache_text_encoder_outputs (tenmin keeps"
                    + " them in memory)"),
            used("vae_batch_size", Kind.INT, 1L, "images per VAE call while caching"),
            used("no_half_vae", Kind.BOOL, false, "VAE in fp32 (tenmin always caches with an fp32 VAE)"),
            // ---- network
            used("network_module", Kind.STRING, null, "must be lycoris.kohya (LoCon)"),
            used("network_dim", Kind.INT, null, "rank of Linear and 1x1 conv modules (LyCORIS default 4)"),
            used("network_alpha", Kind.FLOAT, 1.0, "alpha of Linear and 1x1 conv modules"),
            used("network_args", Kind.LIST, List.of(), "LyCORIS key=value arguments: algo, preset, conv_dim, conv_alpha, ..."),
            used("network_train_unet_only", Kind.BOOL, false, "train only the U-Net LoRA"),
            used("network_train_text_encoder_only", Kind.BOOL, false, "train only the text-encoder LoRA"),
            used("text_encoder_modules", Kind.STRING, "full", "tenmin: text-encoder layers of preset full: 'full' (attention + MLP, 264 on SDXL) or 'mlp' (88, the reference run's LyCORIS 3.1.0)"),
            used("te2_pooled", Kind.STRING, "sai", "tenmin: pooled TE2 output 'sai' (h·P, as SAI and the UIs) or 'kohya' (h·Pᵀ, sd-scripts)"),
            used("network_weights", Kind.STRING, null, "a LoCon/LoRA file (same ranks and alphas) whose weights the"
                    + " network starts from, e.g. to train an existing LoRA further; its tensors this network lacks"
                    + " are listed and left out (--resume continues a tenmin run exactly, with its optimizer state)"),
            used("network_dropout", Kind.FLOAT, null, "dropout on each LoCon branch's output while training (LyCORIS"
                    + " 'dropout', which --network_args dropout=... overrides; also rank_dropout= and module_dropout=)"),
            used("dim_from_weights", Kind.BOOL, false, "ranks and alphas from the --network_weights file (one rank for"
                    + " linear modules and one for k×k convolutions)"),
            used("base_weights", Kind.LIST, List.of(), "LoRA/LoCon files merged into the base model's weights before"
                    + " training (and before latents and text-encoder outputs are cached)"),
            used("base_weights_multiplier", Kind.LIST, List.of(), "the strength of each --base_weights file, in order"
                    + " (1.0 for files without one)"),
            used("scale_weight_norms", Kind.FLOAT, null, "max-norm regularisation: after each optimizer step a LoCon"
                    + " module whose delta's norm exceeds this is scaled down to it (LyCORIS's scalar; 1 is common)"),
            // ---- optimizer and schedule
            used("optimizer_type", Kind.STRING, "AdamW", "ClybW, LodeW, AdamW, Lion, SGDNesterov, SGD (8-bit variants run in fp32)"),
            used("use_8bit_adam", Kind.BOOL, false, "the reference's old switch for --optimizer_type AdamW8bit"),
            used("use_lion_optimizer", Kind.BOOL, false, "the reference's old switch for --optimizer_type Lion"),
            used("optimizer_args", Kind.LIST, List.of(), "optimizer key=value arguments (Python literals), e.g. weight_decay=0.01 betas=(0.9,0.99)"),
            used("learning_rate", Kind.FLOAT, 2.0e-6, "optimizer default lr (groups without their own lr)"),
            used("unet_lr", Kind.FLOAT, null, "U-Net LoRA lr (default --learning_rate)"),
            used("text_encoder_lr", Kind.FLOAT, null, "text-encoder LoRA lr (default --learning_rate)"),
            used("max_grad_norm", Kind.FLOAT, 1.0, "clip the global gradient norm (0: off)"),
            used("lr_scheduler", Kind.STRING, "constant", "constant, constant_with_warmup, linear, cosine,"
                    + " cosine_with_restarts, polynomial, inverse_sqrt, cosine_with_min_lr, warmup_stable_decay,"
                    + " piecewise_constant"),
            used("lr_scheduler_args", Kind.LIST, List.of(), "scheduler key=value arguments (Python literals), e.g."
                    + " num_cycles=0.375; piecewise_constant: step_rules=1:10,0.1:20,0.005 (lr x1 for the first 10"
                    + " steps, x0.1 up to step 20, then x0.005)"),
            used("lr_warmup_steps", Kind.FLOAT, 0.0, "warm-up steps, or a fraction of the run when below 1"),
            used("lr_scheduler_num_cycles", Kind.INT, 1L, "restarts of cosine_with_restarts"),
            used("lr_scheduler_power", Kind.FLOAT, 1.0, "power of the polynomial schedule"),
            used("lr_decay_steps", Kind.FLOAT, 0.0, "decay steps of warmup_stable_decay, or a fraction of the run when"
                    + " below 1"),
            used("lr_scheduler_min_lr_ratio", Kind.FLOAT, null, "lowest lr as a ratio of the initial one"
                    + " (cosine_with_min_lr, warmup_stable_decay)"),
            used("lr_scheduler_timescale", Kind.INT, null, "timescale of inverse_sqrt (default: the warm-up steps)"),
            neutral("lr_scheduler_type", Kind.STRING, null, "custom scheduler classes"),
            // ---- loop
            used("train_batch_size", Kind.INT, 1L, "images per micro-batch (one bucket each)"),
            used("gradient_accumulation_steps", Kind.INT, 1L, "micro-batches per optimizer step"),
            used("max_train_steps", Kind.INT, 1600L, "optimizer steps"),
            used("max_train_epochs", Kind.INT, null, "epochs (overrides --max_train_steps)"),
            used("mixed_precision", Kind.STRING, "no", "no, fp16 or bf16 compute for the frozen models"),
            used("fp8_base", Kind.BOOL, false, "store the frozen U-Net and text encoders as float8 e4m3fn (1 byte a"
                    + " weight; embeddings stay), cast to the compute dtype at each use; needs --mixed_precision"
                    + " fp16/bf16 (on the CPU: fp8 weights, fp32 compute)"),
            used("gradient_checkpointing", Kind.BOOL, false, "recompute activations in backward (less memory)"),
            used("checkpointing", Kind.STRING, null, "tenmin: U-Net blocks recomputed in the backward: all, none, a list"
                    + " such as input_blocks.1-5,output_blocks.3-8, or auto (on a GPU: the least recomputation whose"
                    + " planned peak fits the free memory, so a large card goes faster; elsewhere as"
                    + " --gradient_checkpointing); default: all with --gradient_checkpointing, else none"),
            used("min_timestep", Kind.INT, null, "smallest training timestep (default 0; when given, modelspec.timestep_range is written)"),
            used("max_timestep", Kind.INT, null, "largest training timestep, exclusive (default 1000; when given, modelspec.timestep_range is written)"),
            used("noise_offset", Kind.FLOAT, null, "noise offset strength: a per-channel constant offset·N(0,1) added to the noise"),
            used("noise_offset_random_strength", Kind.BOOL, false, "the noise offset's strength is U(0,1)·noise_offset,"
                    + " drawn per micro-batch"),
            used("adaptive_noise_scale", Kind.FLOAT, null, "adds this times |mean| of each latent channel to the"
                    + " noise offset (needs --noise_offset; may be negative, the sum is clamped at 0)"),
            used("ip_noise_gamma", Kind.FLOAT, null, "input perturbation: the model's input is noised with"
                    + " noise + gamma·N(0,1), the target stays the noise (0.1 is common)"),
            used("ip_noise_gamma_random_strength", Kind.BOOL, false, "the input perturbation's gamma is"
                    + " U(0,1)·ip_noise_gamma, drawn per micro-batch"),
            used("multires_noise_iterations", Kind.INT, null, "pyramid-noise levels"),
            used("multires_noise_discount", Kind.FLOAT, 0.3, "pyramid-noise discount per level"),
            used("loss_type", Kind.STRING, "l2", "l2 (MSE), huber or smooth_l1 (large errors pull less)"),
            used("huber_c", Kind.FLOAT, 0.1, "the Huber threshold c, in (0, 1] (huber and smooth_l1)"),
            used("huber_schedule", Kind.STRING, "snr", "how the threshold follows the timestep: snr, exponential or"
                    + " constant (huber and smooth_l1)"),
            used("v_parameterization", Kind.BOOL, false, "the base model predicts v (v-prediction SDXL models such as"
                    + " NoobAI-XL V-Pred): the loss targets v, samples are drawn with v-prediction"),
            used("zero_terminal_snr", Kind.BOOL, false, "train on the schedule rescaled to zero SNR at the last timestep"
                    + " (for v-prediction models trained with it)"),
            used("scale_v_pred_loss_like_noise_pred", Kind.BOOL, false, "with --v_parameterization: each image's loss"
                    + " times SNR/(SNR+1)"),
            used("v_pred_like_loss", Kind.FLOAT, null, "epsilon prediction: add this times loss/(SNR/(SNR+1))"),
            used("min_snr_gamma", Kind.FLOAT, null, "min-SNR-gamma loss weighting: each image's loss times min(SNR, gamma)/SNR"
                    + " of its timestep (5 is the common choice; 0 or absent: off)"),
            used("debiased_estimation_loss", Kind.BOOL, false, "each image's loss times 1/sqrt(SNR) of its timestep"
                    + " (SNR capped at 1000)"),
            // ---- saving
            used("save_precision", Kind.STRING, null, "float, fp16 or bf16 (default: fp16, as the guide; kohya's default is float)"),
            used("save_model_as", Kind.STRING, "safetensors", "only safetensors"),
            used("save_every_n_steps", Kind.INT, null, "save every N optimizer steps"),
            used("save_every_n_epochs", Kind.INT, null, "save every N epochs"),
            used("save_last_n_steps", Kind.INT, null, "keep only the step saves of the last N steps"),
            used("save_last_n_epochs", Kind.INT, null, "keep only the last N epoch saves"),
            used("save_n_epoch_ratio", Kind.INT, null, "save about N times over the run: every floor(epochs / N)"
                    + " epochs (at least every epoch), in place of --save_every_n_epochs"),
            used("no_metadata", Kind.BOOL, false, "write no ss_* metadata"),
            used("training_comment", Kind.STRING, null, "ss_training_comment"),
            used("metadata_title", Kind.STRING, null, "modelspec.title"),
            used("metadata_author", Kind.STRING, null, "modelspec.author"),
            used("metadata_description", Kind.STRING, null, "modelspec.description"),
            used("metadata_license", Kind.STRING, null, "modelspec.license"),
            used("metadata_tags", Kind.STRING, null, "modelspec.tags"),
            used("save_state", Kind.BOOL, false, "also write a resume state (.tenmin-state: fp32 weights, optimizer"
                    + " moments, position) beside every step and epoch save; one is always written with the final save,"
                    + " on Ctrl-C and on divergence"),
            noEffect("save_state_on_train_end", Kind.BOOL, false, "tenmin always writes a resume state with the final save"),
            used("save_last_n_steps_state", Kind.INT, null, "keep only the resume states of the last N steps (default:"
                    + " as --save_last_n_steps)"),
            used("save_last_n_epochs_state", Kind.INT, null, "keep only the last N epochs' resume states (default: as"
                    + " --save_last_n_epochs)"),
            used("use_safetensors", Kind.BOOL, false, "(the reference's switch for checkpoint files) LoRA files are"
                    + " always safetensors"),
            // ---- logging
            used("log_with", Kind.STRING, null, "tensorboard (the default when --logging_dir is given)"),
            used("logging_dir", Kind.STRING, null, "root of the TensorBoard run folders"),
            used("log_prefix", Kind.STRING, null, "run folder prefix (before the timestamp)"),
            used("log_tracker_name", Kind.STRING, null, "run sub-folder (default network_train)"),
            used("reference_lr_tags", Kind.BOOL, false, "tenmin: log only lr/unet, as the reference does for LyCORIS (its tag quirk)"),
            noEffect("log_config", Kind.BOOL, false, "the resolved config is printed and stored in the metadata and state"),
            // ---- sampling
            used("sample_prompts", Kind.STRING, null, "prompt file (one prompt per line with --w --h --d --s --l --n options)"),
            used("sample_sampler", Kind.STRING, "euler_a", "sampler for samples: euler_a, k_euler_a, euler, k_euler, ddim"
                    + " or dpmsolver++ (DPM++ 2M); kohya's default is ddim, tenmin's the guide's euler_a"),
            used("sample_every_n_steps", Kind.INT, null, "sample every N optimizer steps"),
            used("sample_every_n_epochs", Kind.INT, null, "sample every N epochs"),
            used("sample_at_first", Kind.BOOL, false, "sample before training"),
            // ---- accepted, no effect here
            noEffect("sdpa", Kind.BOOL, false, "tenmin's backends pick their own attention kernel"),
            noEffect("xformers", Kind.BOOL, false, "tenmin's backends pick their own attention kernel"),
            noEffect("mem_eff_attn", Kind.BOOL, false, "tenmin's backends pick their own attention kernel"),
            noEffect("max_data_loader_n_workers", Kind.INT, 8L, "tenmin loads data in-process"),
            noEffect("persistent_data_loader_workers", Kind.BOOL, false, "tenmin loads data in-process"),
            used("dataset_repeats", Kind.INT, 1L, "with --dataset_config: the repeats of subsets that give no num_repeats"
                    + " (without it the folder names give them, as in the reference)"),
            noEffect("lowram", Kind.BOOL, false, "memory is planned by the backend"),
            noEffect("lowvram", Kind.BOOL, false, "memory is planned by the backend"),
            noEffect("highvram", Kind.BOOL, false, "memory is planned by the backend"),
            noEffect("clip_skip", Kind.INT, null, "SDXL uses fixed text-encoder layers (the reference ignores it too)"),
            noEffect("skip_cache_check", Kind.BOOL, false, "cache validity is always checked (cheap)"),
            noEffect("console_log_level", Kind.STRING, null, "use --verbose"),
            noEffect("console_log_file", Kind.STRING, null, "redirect stderr instead"),
            noEffect("console_log_simple", Kind.BOOL, false, "tenmin's log lines are plain"),
            noEffect("ddp_timeout", Kind.INT, null, "single process"),
            noEffect("ddp_gradient_as_bucket_view", Kind.BOOL, false, "single process"),
            noEffect("ddp_static_graph", Kind.BOOL, false, "single process"),
            noEffect("wandb_api_key", Kind.STRING, null, "only TensorBoard logging"),
            noEffect("log_tracker_config", Kind.STRING, null, "only TensorBoard logging"),
            noEffect("huggingface_repo_id", Kind.STRING, null, "tenmin does not upload; the files stay in --output_dir"),
            noEffect("huggingface_repo_type", Kind.STRING, null, "tenmin does not upload"),
            noEffect("huggingface_path_in_repo", Kind.STRING, null, "tenmin does not upload"),
            noEffect("huggingface_token", Kind.STRING, null, "tenmin does not upload"),
            noEffect("huggingface_repo_visibility", Kind.STRING, null, "tenmin does not upload"),
            noEffect("save_state_to_huggingface", Kind.BOOL, false, "tenmin does not upload; states stay in --output_dir"),
            noEffect("async_upload", Kind.BOOL, false, "tenmin does not upload"),
            noEffect("cache_info", Kind.BOOL, false, "image sizes are read at start (fast enough without a cache file)"),
            noEffect("disable_mmap_load_safetensors", Kind.BOOL, false, "checkpoints are memory-mapped and read once"),
            noEffect("tokenizer_cache_dir", Kind.STRING, null, "the CLIP tokenizers ship with tenmin"),
            neutral("resume_from_huggingface", Kind.BOOL, false, "resuming from Hugging Face (use --resume with a local"
                    + " state)"),
            neutral("v2", Kind.BOOL, false, "Stable Diffusion 2 models (the reference refuses --v2 in SDXL training too)"),
            neutral("initial_step", Kind.INT, null, "starting the step count elsewhere than 0 (use --resume)"),
            neutral("initial_epoch", Kind.INT, null, "starting the epoch count elsewhere than 1 (use --resume)"),
            neutral("skip_until_initial_step", Kind.BOOL, false, "skipping data until --initial_step (use --resume)"),
            neutral("debug_dataset", Kind.BOOL, false, "the dataset debug viewer"),
            neutral("dataset_class", Kind.STRING, null, "custom dataset classes"),
            used("masked_loss", Kind.BOOL, false, "loss masks: the red channel of each image's namesake in its"
                    + " --dataset_config subset's conditioning_data_dir (white trains, black is ignored)"),
            neutral("conditioning_data_dir", Kind.STRING, null, "a command-line conditioning folder (the reference's"
                    + " LoRA trainer does not read it either; give conditioning_data_dir per --dataset_config subset)"),
            neutral("deepspeed", Kind.BOOL, false, "DeepSpeed (one process, one device)"),
            neutral("zero_stage", Kind.INT, 2L, "DeepSpeed ZeRO"),
            neutral("offload_optimizer_device", Kind.STRING, null, "DeepSpeed offloading (tenmin moves the optimizer to"
                    + " the host by itself when the device is short of memory)"),
            neutral("offload_optimizer_nvme_path", Kind.STRING, null, "DeepSpeed offloading"),
            neutral("offload_param_device", Kind.STRING, null, "DeepSpeed offloading"),
            neutral("offload_param_nvme_path", Kind.STRING, null, "DeepSpeed offloading"),
            neutral("zero3_init_flag", Kind.BOOL, false, "DeepSpeed ZeRO-3"),
            neutral("zero3_save_16bit_model", Kind.BOOL, false, "DeepSpeed ZeRO-3"),
            neutral("fp16_master_weights_and_gradients", Kind.BOOL, false, "DeepSpeed fp16 master weights"),
            noEffect("wandb_run_name", Kind.STRING, null, "only TensorBoard logging"),
            noEffect("torch_compile", Kind.BOOL, false, "no PyTorch here"),
            noEffect("dynamo_backend", Kind.STRING, "inductor", "no PyTorch here"),
            // ---- features tenmin does not implement: neutral value only
            neutral("in_json", Kind.STRING, null, "fine-tuning metadata datasets"),
            used("color_aug", Kind.BOOL, false, "per-draw colour augmentation (a third of the draws: a small hue shift"
                    + " or the reference's 8-bit gamma); needs latents encoded per draw (no --cache_latents)"),
            used("random_crop", Kind.BOOL, false, "a random bucket-sized window of the resized image at every draw"
                    + " instead of the centre one; needs latents encoded per draw (no --cache_latents)"),
            neutral("face_crop_aug_range", Kind.STRING, null, "face-crop augmentation"),
            neutral("weighted_captions", Kind.BOOL, false, "weighted captions (the reference refuses them in SDXL"
                    + " training too)"),
            neutral("full_fp16", Kind.BOOL, false, "fp16 LoRA weights"),
            neutral("full_bf16", Kind.BOOL, false, "bf16 LoRA weights"),
            neutral("fused_backward_pass", Kind.BOOL, false, "fused backward pass (the reference takes it with Adafactor"
                    + " only, and its LoRA trainer does not use it)"));

    /**
     * The built-in demo's recipe (no model and no dataset given): the guide's mechanics — LoCon with preset
     * full, ClybW, cosine with num_cycles 0.375, gradient accumulation, multires noise, flips, caption
     * shuffling, latent cache on disk, fp16 saves, samples and TensorBoard logs — scaled to a tiny random
     * model and 128-pixel images so it runs in about a minute on two CPU cores. Flags the user gives win.
     */
    static final Map<String, Object> DEMO = demo();

    private static Map<String, Object> demo() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("resolution", "128,128");
        m.put("enable_bucket", true);
        m.put("min_bucket_reso", 64L);
        m.put("max_bucket_reso", 256L);
        m.put("bucket_reso_steps", 32L);
        m.put("caption_extension", ".txt");
        m.put("shuffle_caption", true);
        m.put("flip_aug", true);
        m.put("cache_latents", true);
        m.put("cache_latents_to_disk", true);
        m.put("network_module", "lycoris.kohya");
        m.put("network_dim", 4L);
        m.put("network_alpha", 2.0);
        m.put("network_args", List.of("preset=full", "conv_dim=8", "conv_alpha=4", "algo=locon"));
        m.put("optimizer_type", "ClybW");
        m.put("lr_scheduler", "cosine");
        m.put("lr_scheduler_args", List.of("num_cycles=0.375"));
        m.put("learning_rate", 1.0e-3);
        m.put("unet_lr", 1.0e-3);
        m.put("text_encoder_lr", 5.0e-4);
        m.put("max_grad_norm", 1.0);
        m.put("train_batch_size", 2L);
        m.put("gradient_accumulation_steps", 2L);
        m.put("max_train_steps", 24L);
        m.put("multires_noise_iterations", 6L);
        m.put("multires_noise_discount", 0.4);
        m.put("save_every_n_steps", 8L);
        m.put("sample_every_n_steps", 8L);
        m.put("log_with", "tensorboard");
        m.put("log_prefix", "demo-");
        m.put("seed", 42L);
        m.put("device", "cpu");
        return java.util.Collections.unmodifiableMap(m);
    }

    private static final Map<String, Flag> BY_NAME = index();

    private static Map<String, Flag> index() {
        Map<String, Flag> m = new LinkedHashMap<>();
        for (Flag f : ALL) {
            if (m.put(f.name(), f) != null) {
                throw new IllegalStateException("flag listed twice: " + f.name());
            }
        }
        return java.util.Collections.unmodifiableMap(m);
    }

    /** The flag called {@code name} (no dashes), or null. */
    static Flag get(String name) {
        return BY_NAME.get(name);
    }
}
