package tenmin.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The training command line of the "10 Minute SDXL LoRA" guide (everything after {@code sdxl_train_network.py}),
 * transcribed flag for flag, with the paths and the resolution as parameters and no model flag (the caller
 * adds {@code --pretrained_model_name_or_path} or {@code --random_model}). {@code tenmin bench recipe} runs it.
 */
final class GuideRecipe {
    private GuideRecipe() {
    }

    /** The guide's flags; a mutable list so that callers can append. */
    static List<String> arguments(Path trainDataDir, Path outputDir, Path samplePrompts, int resolution) {
        return new ArrayList<>(List.of(
                "--train_data_dir=" + trainDataDir, "--resolution=" + resolution + "," + resolution,
                "--output_dir=" + outputDir, "--output_name=yifftoolkit-schnell", "--enable_bucket",
                "--min_bucket_reso=256", "--max_bucket_reso=2048", "--network_alpha=4", "--save_model_as=safetensors",
                "--network_module=lycoris.kohya", "--network_args", "preset=full", "conv_dim=256", "conv_alpha=4",
                "rank_dropout=0", "module_dropout=0", "use_tucker=False", "use_scalar=False", "rank_dropout_scale=False",
                "algo=locon", "dora_wd=False", "train_norm=False", "--network_dropout=0", "--lr_scheduler=cosine",
                "--lr_scheduler_args=num_cycles=0.375", "--learning_rate=0.0003", "--unet_lr=0.0003",
                "--text_encoder_lr=0.0001", "--network_dim=8", "--no_half_vae", "--flip_aug", "--save_every_n_steps=1",
                "--mixed_precision=bf16", "--save_precision=fp16", "--cache_latents", "--cache_latents_to_disk",
                "--optimizer_type=ClybW", "--max_grad_norm=1", "--max_data_loader_n_workers=8",
                "--bucket_reso_steps=32", "--multires_noise_iterations=12", "--multires_noise_discount=0.4",
                "--log_prefix=xl-locon", "--log_with=tensorboard", "--logging_dir=" + outputDir.resolve("logs"),
                "--gradient_accumulation_steps=6", "--gradient_checkpointing", "--train_batch_size=8",
                "--dataset_repeats=1", "--shuffle_caption", "--max_train_steps=80", "--sdpa",
                "--caption_extension=.txt", "--sample_prompts=" + samplePrompts, "--sample_sampler=euler_a",
                "--sample_every_n_steps=10"));
    }
}
