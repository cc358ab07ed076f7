package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import tenmin.core.Reporter;
import tenmin.train.TrainConfig;
import tenmin.train.save.TrainingMetadata;

/** The guide's run produces the ss_* values trainer-spec §9.3 lists for it. */
class GuideMetadataTest {
    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path tmp;

    private List<String> guide() throws java.io.IOException {
        java.nio.file.Path model = java.nio.file.Files.writeString(tmp.resolve("pony.safetensors"), "x");
        java.nio.file.Path data = java.nio.file.Files.createDirectories(tmp.resolve("training_dir"));
        java.nio.file.Path prompts = java.nio.file.Files.writeString(data.resolve("p.txt"), "a cat\n");
        return TrainArgsTest.guide(model, data, tmp.resolve("out"), prompts);
    }


    @Test
    void guideRunMetadataMatchesTheSpecsValues() throws java.io.IOException {
        TrainConfig c = TrainArgs.parse(guide(), Reporter.SILENT, () -> 77L);
        TrainingMetadata.Run run = new TrainingMetadata.Run(123, 1729000000.5, 400, 50, 9, 80,
                List.of(new TrainingMetadata.DatasetDir("10_ohwx", 10, 40)),
                Map.of("10_ohwx", Map.of("ohwx", 40)), "{\"buckets\": {}, \"mean_img_ar_error\": 0.0}",
                "ponyDiffusionV6XL.safetensors", "abcd1234", "ff".repeat(32), "tenmin-dev",
                "library.optimizers.clybius.Compass");
        Map<String, String> m = TrainingMetadata.build(c, run, 1729000600.25, 10, 1, ZoneOffset.UTC);
        Map<String, String> expected = Map.ofEntries(
                Map.entry("ss_learning_rate", "0.0003"), Map.entry("ss_text_encoder_lr", "0.0001"),
                Map.entry("ss_unet_lr", "0.0003"), Map.entry("ss_num_reg_images", "0"),
                Map.entry("ss_gradient_checkpointing", "True"), Map.entry("ss_gradient_accumulation_steps", "6"),
                Map.entry("ss_max_train_steps", "80"), Map.entry("ss_lr_warmup_steps", "0"),
                Map.entry("ss_lr_scheduler", "cosine"), Map.entry("ss_network_module", "lycoris.kohya"),
                Map.entry("ss_network_dim", "8"), Map.entry("ss_network_alpha", "4.0"),
                Map.entry("ss_network_dropout", "0.0"), Map.entry("ss_mixed_precision", "bf16"),
                Map.entry("ss_full_fp16", "False"), Map.entry("ss_v2", "False"),
                Map.entry("ss_base_model_version", "sdxl_base_v1-0"), Map.entry("ss_clip_skip", "None"),
                Map.entry("ss_max_token_length", "None"), Map.entry("ss_cache_latents", "True"),
                Map.entry("ss_seed", "77"), Map.entry("ss_lowram", "False"), Map.entry("ss_noise_offset", "None"),
                Map.entry("ss_multires_noise_iterations", "12"), Map.entry("ss_multires_noise_discount", "0.4"),
                Map.entry("ss_adaptive_noise_scale", "None"), Map.entry("ss_zero_terminal_snr", "False"),
                Map.entry("ss_training_comment", "None"),
                Map.entry("ss_optimizer", "library.optimizers.clybius.Compass"), Map.entry("ss_max_grad_norm", "1.0"),
                Map.entry("ss_caption_dropout_rate", "0.0"), Map.entry("ss_caption_dropout_every_n_epochs", "0"),
                Map.entry("ss_caption_tag_dropout_rate", "0.0"), Map.entry("ss_face_crop_aug_range", "None"),
                Map.entry("ss_prior_loss_weight", "1.0"), Map.entry("ss_min_snr_gamma", "None"),
                Map.entry("ss_scale_weight_norms", "None"), Map.entry("ss_ip_noise_gamma", "None"),
                Map.entry("ss_debiased_estimation", "False"), Map.entry("ss_noise_offset_random_strength", "False"),
                Map.entry("ss_ip_noise_gamma_random_strength", "False"), Map.entry("ss_loss_type", "l2"),
                Map.entry("ss_huber_schedule", "snr"), Map.entry("ss_huber_c", "0.1"),
                Map.entry("ss_batch_size_per_device", "8"), Map.entry("ss_total_batch_size", "48"),
                Map.entry("ss_resolution", "(1024, 1024)"), Map.entry("ss_color_aug", "False"),
                Map.entry("ss_flip_aug", "True"), Map.entry("ss_random_crop", "False"),
                Map.entry("ss_shuffle_caption", "True"), Map.entry("ss_enable_bucket", "True"),
                Map.entry("ss_bucket_no_upscale", "False"), Map.entry("ss_min_bucket_reso", "256"),
                Map.entry("ss_max_bucket_reso", "2048"), Map.entry("ss_keep_tokens", "0"),
                Map.entry("ss_reg_dataset_dirs", "{}"),
                Map.entry("ss_dataset_dirs", "{\"10_ohwx\": {\"n_repeats\": 10, \"img_count\": 40}}"),
                Map.entry("ss_tag_frequency", "{\"10_ohwx\": {\"ohwx\": 40}}"),
                Map.entry("ss_sd_model_name", "ponyDiffusionV6XL.safetensors"),
                Map.entry("ss_training_started_at", "1729000000.5"), Map.entry("ss_training_finished_at", "1729000600.25"),
                Map.entry("ss_steps", "10"), Map.entry("ss_epoch", "1"), Map.entry("ss_session_id", "123"),
                Map.entry("ss_output_name", "yifftoolkit-schnell"),
                Map.entry("modelspec.sai_model_spec", "1.0.0"),
                Map.entry("modelspec.architecture", "stable-diffusion-xl-v1-base/lora"),
                Map.entry("modelspec.implementation", "https://github.com/Stability-AI/generative-models"),
                Map.entry("modelspec.resolution", "1024x1024"), Map.entry("modelspec.prediction_type", "epsilon"),
                Map.entry("modelspec.title", "yifftoolkit-schnell"), Map.entry("modelspec.date", "2024-10-15T13:56:40")); // the save's time (get_sai_model_spec at each save)
        for (Map.Entry<String, String> e : expected.entrySet()) {
            assertEquals(e.getValue(), m.get(e.getKey()), e.getKey());
        }
        assertEquals("{\"preset\": \"full\", \"conv_dim\": \"256\", \"conv_alpha\": \"4\", \"rank_dropout\": \"0\","
                + " \"module_dropout\": \"0\", \"use_tucker\": \"False\", \"use_scalar\": \"False\","
                + " \"rank_dropout_scale\": \"False\", \"algo\": \"locon\", \"dora_wd\": \"False\","
                + " \"train_norm\": \"False\", \"dropout\": 0.0}", m.get("ss_network_args"));
        assertTrue(m.keySet().stream().allMatch(k -> k.startsWith("ss_") || k.startsWith("modelspec.")));
        // modelspec keys the guide's run does not write (no timesteps, no clip skip, no metadata_* flags)
        for (String k : List.of("modelspec.timestep_range", "modelspec.encoder_layer", "modelspec.author",
                "modelspec.description", "modelspec.license", "modelspec.tags")) {
            assertTrue(!m.containsKey(k), k);
        }
        // optimizer args are appended as kohya formats them
        List<String> a = new java.util.ArrayList<>(TrainArgsTest.guide(tmp.resolve("pony.safetensors"),
                tmp.resolve("training_dir"), tmp.resolve("out"), tmp.resolve("training_dir/p.txt")));
        a.addAll(List.of("--optimizer_args", "weight_decay=0.05", "betas=(0.9,0.99)"));
        Map<String, String> m2 = TrainingMetadata.build(TrainArgs.parse(a, Reporter.SILENT, () -> 1L), run, 0, 1, 0,
                ZoneOffset.UTC);
        assertEquals("library.optimizers.clybius.Compass(weight_decay=0.05,betas=(0.9, 0.99))", m2.get("ss_optimizer"));
    }

    /**
     * Values kohya writes when flags are left out or added (sd-scripts train_network.py metadata and
     * sai_model_spec.build_metadata): network_dropout None, modelspec title from the save time, the timestep
     * range and encoder layer only when given.
     */
    @Test
    void metadataFollowsTheReferenceForFlagsLeftOutOrAdded() throws java.io.IOException {
        TrainingMetadata.Run run = new TrainingMetadata.Run(1, 1729000000.5, 4, 1, 80, 80, List.of(), Map.of(), null,
                "m.safetensors", "abcd1234", "ff".repeat(32), "tenmin-dev", "library.optimizers.clybius.Compass");
        List<String> a = new java.util.ArrayList<>(guide());
        a.removeIf(s -> s.equals("--network_dropout=0") || s.startsWith("--output_name"));
        a.addAll(List.of("--min_timestep=100", "--clip_skip=2"));
        Map<String, String> m = metadata(a, run);
        assertEquals("None", m.get("ss_network_dropout"));
        assertEquals("None", m.get("ss_output_name"));
        assertTrue(m.get("ss_network_args").endsWith(", \"train_norm\": \"False\", \"dropout\": null}"),
                m.get("ss_network_args"));
        assertEquals("LoRA@1729000600.25", m.get("modelspec.title"));
        assertEquals("2024-10-15T13:56:40", m.get("modelspec.date"));
        assertEquals("100,1000", m.get("modelspec.timestep_range"));
        assertEquals("2", m.get("modelspec.encoder_layer"));
        assertEquals("2", m.get("ss_clip_skip"));
        assertEquals("null", m.get("ss_bucket_info"));
        // a dropout named in --network_args stays as given (kohya adds network_dropout only when absent)
        a.addAll(List.of("--network_dropout=0", "--network_args", "preset=full", "dropout=0"));
        Map<String, String> m2 = metadata(a, run);
        assertEquals("{\"preset\": \"full\", \"dropout\": \"0\"}", m2.get("ss_network_args"));
        assertEquals("0.0", m2.get("ss_network_dropout"));
        // the SNR loss weightings: str(args.min_snr_gamma) (argparse's float) and the debiased switch
        a.addAll(List.of("--min_snr_gamma=5", "--debiased_estimation_loss"));
        Map<String, String> m3 = metadata(a, run);
        assertEquals("5.0", m3.get("ss_min_snr_gamma"));
        assertEquals("True", m3.get("ss_debiased_estimation"));
        // the noise flags: str() of argparse's floats and switches
        a.addAll(List.of("--noise_offset=0.05", "--noise_offset_random_strength", "--adaptive_noise_scale=-0.01",
                "--ip_noise_gamma=0.1", "--ip_noise_gamma_random_strength"));
        Map<String, String> m4 = metadata(a, run);
        assertEquals("0.05", m4.get("ss_noise_offset"));
        assertEquals("True", m4.get("ss_noise_offset_random_strength"));
        assertEquals("-0.01", m4.get("ss_adaptive_noise_scale"));
        assertEquals("0.1", m4.get("ss_ip_noise_gamma"));
        assertEquals("True", m4.get("ss_ip_noise_gamma_random_strength"));
        // the caption dropouts: str() of argparse's float and int
        a.addAll(List.of("--caption_dropout_rate=0.05", "--caption_dropout_every_n_epochs=3",
                "--caption_tag_dropout_rate=0.1"));
        Map<String, String> m5 = metadata(a, run);
        assertEquals("0.05", m5.get("ss_caption_dropout_rate"));
        assertEquals("3", m5.get("ss_caption_dropout_every_n_epochs"));
        assertEquals("0.1", m5.get("ss_caption_tag_dropout_rate"));
        a.addAll(List.of("--loss_type=huber", "--huber_schedule=constant", "--huber_c=0.25"));
        Map<String, String> m6 = metadata(a, run);
        assertEquals("huber", m6.get("ss_loss_type"));
        assertEquals("constant", m6.get("ss_huber_schedule"));
        assertEquals("0.25", m6.get("ss_huber_c"));
        // regularisation folders: counted apart (repeats × images), listed in ss_reg_dataset_dirs
        TrainingMetadata.Run withReg = new TrainingMetadata.Run(1, 1729000000.5, 4, 1, 80, 80, List.of(
                new TrainingMetadata.DatasetDir("10_ohwx", 10, 4), new TrainingMetadata.DatasetDir("1_woman", 1, 30, true)),
                Map.of(), null, "m.safetensors", "abcd1234", "ff".repeat(32), "tenmin-dev",
                "library.optimizers.clybius.Compass");
        Map<String, String> m7 = metadata(a, withReg);
        assertEquals("30", m7.get("ss_num_reg_images"));
        assertEquals("{\"10_ohwx\": {\"n_repeats\": 10, \"img_count\": 4}}", m7.get("ss_dataset_dirs"));
        assertEquals("{\"1_woman\": {\"n_repeats\": 1, \"img_count\": 30}}", m7.get("ss_reg_dataset_dirs"));
        assertEquals("epsilon", m6.get("modelspec.prediction_type"));
        List<String> vArgs = new java.util.ArrayList<>(a);
        vArgs.addAll(List.of("--v_parameterization", "--zero_terminal_snr"));
        Map<String, String> mv = metadata(vArgs, run);
        assertEquals("v", mv.get("modelspec.prediction_type"));
        assertEquals("True", mv.get("ss_zero_terminal_snr"));
        a.add("--max_token_length=225");
        assertEquals("225", metadata(a, run).get("ss_max_token_length"));
    }

    /**
     * {@code --no_metadata}: kohya's save_model writes minimum_metadata (SS_METADATA_MINIMUM_KEYS) updated with the
     * modelspec keys, and LyCORIS adds sshs_model_hash (LoraFileWriter) — not an empty header.
     */
    @Test
    void noMetadataKeepsTheMinimumKeysAndModelspec() throws java.io.IOException {
        TrainingMetadata.Run run = new TrainingMetadata.Run(1, 1729000000.5, 4, 1, 80, 80, List.of(), Map.of(), null,
                "m.safetensors", "abcd1234", "ff".repeat(32), "tenmin-dev", "library.optimizers.clybius.Compass");
        List<String> a = new java.util.ArrayList<>(guide());
        a.add("--no_metadata");
        Map<String, String> m = TrainingMetadata.forSave(TrainArgs.parse(a, Reporter.SILENT, () -> 1L), run,
                1729000600.25, 3, 0, ZoneOffset.UTC);
        assertEquals(java.util.Set.of("ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim",
                "ss_network_alpha", "ss_network_args", "modelspec.sai_model_spec", "modelspec.architecture",
                "modelspec.implementation", "modelspec.title", "modelspec.date", "modelspec.resolution",
                "modelspec.prediction_type"), m.keySet());
        assertEquals("False", m.get("ss_v2"));
        assertEquals("sdxl_base_v1-0", m.get("ss_base_model_version"));
        assertEquals("8", m.get("ss_network_dim"));
        assertEquals("4.0", m.get("ss_network_alpha"));
        assertEquals("yifftoolkit-schnell", m.get("modelspec.title"));
    }

    /** The metadata of a save at the same moment for the flags {@code a}. */
    private static Map<String, String> metadata(List<String> a, TrainingMetadata.Run run) {
        return TrainingMetadata.build(TrainArgs.parse(a, Reporter.SILENT, () -> 1L), run, 1729000600.25, 3, 0,
                ZoneOffset.UTC);
    }
}
