package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.testing.Cli;
import tenmin.testing.LogLines;
import tenmin.train.TrainConfig;
import tenmin.train.schedule.LrSchedule;

class TrainArgsTest {
    @TempDir
    Path tmp;
    Path model;
    Path data;
    Path out;
    Path prompts;


    @BeforeEach
    void files() throws IOException {
        model = Files.writeString(tmp.resolve("pony.safetensors"), "x");
        data = Files.createDirectories(tmp.resolve("training_dir"));
        out = tmp.resolve("output_dir");
        prompts = Files.writeString(data.resolve("sample-prompts.txt"), "a cat --w 1024 --h 1024\n");
    }

    /** The guide's complete command line for the files of this test. */
    List<String> guide() {
        return guide(model, data, out, prompts);
    }

    /** The guide's complete command line, paths replaced. */
    static List<String> guide(Path model, Path data, Path out, Path prompts) {
        return new ArrayList<>(List.of(
                "--pretrained_model_name_or_path=" + model, "--train_data_dir=" + data, "--resolution=1024,1024",
                "--output_dir=" + out, "--output_name=yifftoolkit-schnell", "--enable_bucket", "--min_bucket_reso=256",
                "--max_bucket_reso=2048", "--network_alpha=4", "--save_model_as=safetensors",
                "--network_module=lycoris.kohya", "--network_args", "preset=full", "conv_dim=256", "conv_alpha=4",
                "rank_dropout=0", "module_dropout=0", "use_tucker=False", "use_scalar=False", "rank_dropout_scale=False",
                "algo=locon", "dora_wd=False", "train_norm=False", "--network_dropout=0", "--lr_scheduler=cosine",
                "--lr_scheduler_args=num_cycles=0.375", "--learning_rate=0.0003", "--unet_lr=0.0003",
                "--text_encoder_lr=0.0001", "--network_dim=8", "--no_half_vae", "--flip_aug", "--save_every_n_steps=1",
                "--mixed_precision=bf16", "--save_precision=fp16", "--cache_latents", "--cache_latents_to_disk",
                "--optimizer_type=ClybW", "--max_grad_norm=1", "--max_data_loader_n_workers=8",
                "--bucket_reso_steps=32", "--multires_noise_iterations=12", "--multires_noise_discount=0.4",
                "--log_prefix=xl-locon", "--log_with=tensorboard", "--logging_dir=" + out.resolve("logs"),
                "--gradient_accumulation_steps=6", "--gradient_checkpointing", "--train_batch_size=8",
                "--dataset_repeats=1", "--shuffle_caption", "--max_train_steps=80", "--sdpa",
                "--caption_extension=.txt", "--sample_prompts=" + prompts, "--sample_sampler=euler_a",
                "--sample_every_n_steps=10"));
    }

    TrainConfig parse(List<String> argv, Reporter r) {
        return TrainArgs.parse(argv, r, () -> 1234L);
    }

    @Test
    void acceptsTheGuidesCommandLine() {
        LogLines log = new LogLines();
        TrainConfig c = parse(guide(), log);
        assertEquals(model, c.paths().pretrainedModel());
        assertEquals("yifftoolkit-schnell", c.paths().outputName());
        assertEquals(1024, c.data().width());
        assertEquals(32, c.data().bucketResoSteps());
        assertEquals(2048, c.data().maxBucketReso());
        assertTrue(c.data().enableBucket() && c.data().flipAug() && c.data().captions().shuffle());
        assertTrue(c.data().cacheLatents() && c.data().cacheLatentsToDisk());
        assertEquals(".txt", c.data().captionExtension());
        assertEquals(8, c.network().dim());
        assertEquals(4.0, c.network().alpha());
        assertEquals(256, c.network().convDim());
        assertEquals(4.0, c.network().convAlpha());
        assertEquals("full", c.network().preset());
        assertEquals(11, c.network().args().size());
        assertEquals("ClybW", c.optim().type());
        assertEquals(3e-4, c.optim().unetLr());
        assertEquals(1e-4, c.optim().textEncoderLr());
        assertEquals(1.0, c.optim().maxGradNorm());
        assertEquals(LrSchedule.Kind.COSINE, c.schedule().kind());
        assertEquals(0.375, c.schedule().numCycles());
        assertEquals(8, c.loop().trainBatchSize());
        assertEquals(6, c.loop().gradAccumSteps());
        assertEquals(80, c.loop().maxTrainSteps());
        assertEquals(12, c.loop().noise().multiresIterations());
        assertEquals(0.4, c.loop().noise().multiresDiscount());
        assertEquals("bf16", c.loop().mixedPrecision());
        assertEquals(1234L, c.loop().seed());
        assertFalse(c.loop().seedGiven());
        assertEquals("fp16", c.save().precision());
        assertEquals(1, c.save().everyNSteps());
        assertTrue(c.log().tensorboard());
        assertEquals("xl-locon", c.log().logPrefix());
        assertEquals(10, c.sample().everyNSteps());
        assertEquals(prompts, c.sample().prompts());
        // sdpa, max_data_loader_n_workers, dataset_repeats, rank_dropout_scale: one warning each
        for (String flag : List.of("--sdpa", "--max_data_loader_n_workers", "--dataset_repeats", "rank_dropout_scale")) {
            assertEquals(1, log.count("WARNING", flag), flag);
        }
        assertEquals(4, log.count("WARNING", ""), log.lines().toString());
    }

    /**
     * {@code --output_config} (the reference's read_config_from_file): the flags away from their defaults go to the
     * --config_file path as TOML and nothing is trained; that file read back with --config_file gives the same
     * configuration; an existing file is not overwritten and a missing --config_file is an error.
     */
    @Test
    void outputConfigWritesTheFlagsAndReadsBackTheSame() throws IOException {
        Path written = tmp.resolve("written");
        List<String> argv = new ArrayList<>(guide());
        argv.addAll(List.of("--training_comment=say \"hi\"\\ there", "--output_config", "--config_file=" + written));
        Cli.Run r = Cli.run(java.util.stream.Stream.concat(java.util.stream.Stream.of("train"), argv.stream())
                .toArray(String[]::new));
        assertEquals(0, r.exit(), r.toString());
        Path file = tmp.resolve("written.toml");
        assertEquals(file.toString(), r.out().strip());
        assertFalse(Files.exists(out), "nothing trained");
        String text = Files.readString(file);
        assertFalse(text.contains("output_config") || text.contains("config_file"), text);
        assertTrue(text.contains("multires_noise_discount = 0.4\n") && text.contains("shuffle_caption = true\n"), text);
        List<String> fromFile = List.of("--config_file=" + file);
        TrainConfig direct = parse(guide().subList(0, guide().size()), Reporter.SILENT);
        TrainConfig read = parse(fromFile, Reporter.SILENT);
        assertEquals(direct.flags().entrySet().stream().filter(e -> !e.getKey().equals("config_file")
                        && !e.getKey().equals("training_comment")).toList(),
                read.flags().entrySet().stream().filter(e -> !e.getKey().equals("config_file")
                        && !e.getKey().equals("training_comment")).toList());
        assertEquals("say \"hi\"\\ there", read.save().trainingComment());
        Cli.Run again = Cli.run(java.util.stream.Stream.concat(java.util.stream.Stream.of("train"), argv.stream())
                .toArray(String[]::new));
        assertEquals(2, again.exit(), again.toString());
        assertTrue(again.err().contains("already exists"), again.toString());
        Cli.Run noTarget = Cli.run("train", "--output_config", "--seed=3");
        assertEquals(2, noTarget.exit(), noTarget.toString());
        assertTrue(noTarget.err().contains("--config_file"), noTarget.toString());
    }

    @Test
    void configFileSectionsAreFlattenedAndCommandLineWins() throws IOException {
        Path toml = Files.writeString(tmp.resolve("recipe.toml"), """
                [model_arguments]
                pretrained_model_name_or_path = '%s'
                [dataset_arguments]
                train_data_dir = '%s'
                resolution = "1024,1024"
                shuffle_caption = true
                [training_arguments]
                output_dir = '%s'
                learning_rate = 3e-4
                max_train_steps = 80
                network_args = ["preset=full", "conv_dim=256"]
                lr_scheduler = "cosine"
                lr_scheduler_args = "num_cycles=0.375"
                optimizer_args = ["weight_decay=0.05", "betas=(0.9,0.99)"]
                optimizer_type = "ClybW"
                """.formatted(model, data, out));
        TrainConfig c = parse(List.of("--config_file", toml.toString(), "--max_train_steps=40"), Reporter.SILENT);
        assertEquals(40, c.loop().maxTrainSteps());
        assertEquals(3e-4, c.optim().learningRate());
        assertTrue(c.data().captions().shuffle());
        assertEquals(256, c.network().convDim());
        assertEquals(0.375, c.schedule().numCycles());
        assertEquals(0.05, c.optim().args().get("weight_decay"));
        assertEquals(List.of(0.9, 0.99), c.optim().args().get("betas"));
        // without the extension, as kohya allows
        String noExt = toml.toString().substring(0, toml.toString().length() - 5);
        assertEquals(80, parse(List.of("--config_file=" + noExt), Reporter.SILENT).loop().maxTrainSteps());
    }

    @Test
    void sampleSamplerTakesKohyasNamesOfTheSamplersTenminHas() {
        for (String name : List.of("ddim", "euler", "k_euler", "euler_a", "k_euler_a", "dpmsolver++")) {
            List<String> a = guide();
            a.add("--sample_sampler=" + name);
            assertEquals(name, parse(a, Reporter.SILENT).sample().sampler(), name);
        }
        List<String> heun = guide();
        heun.add("--sample_sampler=heun");
        InputException e = assertThrows(InputException.class, () -> parse(heun, Reporter.SILENT));
        assertTrue(e.getMessage().contains("--sample_sampler") && e.getMessage().contains("heun"), e.getMessage());
    }

    /** The guide's --gradient_checkpointing asks to save memory: auto (all where there is no room, or no figure). */
    @Test
    void checkpointingFollowsTheGuidesFlagUnlessNamed() {
        assertEquals("auto", parse(guide(), Reporter.SILENT).loop().checkpointingSpec());
        List<String> all = guide();
        all.add("--checkpointing=all");
        assertEquals("all", parse(all, Reporter.SILENT).loop().checkpointingSpec(), "the reference's choice, named");
        List<String> without = guide();
        without.remove("--gradient_checkpointing");
        assertEquals("none", parse(without, Reporter.SILENT).loop().checkpointingSpec());
        for (String[] c : new String[][] {{"auto", "auto"}, {" auto ", "auto"}, {"none", "none"},
                {"output_blocks.8,input_blocks.1, input_blocks.2,output_blocks.6-7", "input_blocks.1-2,output_blocks.6-8"}}) {
            List<String> a = guide();
            a.add("--checkpointing=" + c[0]);
            TrainConfig cfg = parse(a, Reporter.SILENT);
            assertEquals(c[1], cfg.loop().checkpointingSpec(), c[0]);
            assertTrue(cfg.loop().gradientCheckpointing(), "the reference's flag is still recorded as given");
        }
        List<String> bad = guide();
        bad.add("--checkpointing=input_block.1");
        InputException e = assertThrows(InputException.class, () -> parse(bad, Reporter.SILENT));
        assertTrue(e.getMessage().contains("--checkpointing") && e.getMessage().contains("input_block.1"), e.getMessage());
    }

    @Test
    void autoCheckpointingTakesTheLeastRecomputationThatFitsTheDevice() {
        TrainConfig cfg = parse(List.of("--checkpointing=auto", "--gradient_checkpointing", "--output_dir=" + out,
                "--train_batch_size=2"), Reporter.SILENT);
        tenmin.models.SdxlConfig tiny = tenmin.models.SdxlConfig.tiny();
        var planner = tenmin.train.AutoCheckpointing.planner(cfg, tiny, tenmin.models.SdxlDtypes.fp32(),
                tenmin.engine.api.Device.CPU);
        List<tenmin.models.sdxl.CheckpointPolicy> candidates = tenmin.models.sdxl.CheckpointPolicy.autoCandidates(tiny.unet());
        // the loop's peak: one micro-batch's, plus the text-encoder tensors kept into the next one
        long none = planner.apply(candidates.getFirst()).loopPeakBytes();
        long second = planner.apply(candidates.get(1)).loopPeakBytes();
        long all = planner.apply(candidates.getLast()).loopPeakBytes();
        long total = 80L << 30;
        long headroom = -tenmin.train.AutoCheckpointing.budget(0, total);
        // free memory exactly enough for each plan plus the headroom
        var dev = tenmin.engine.api.Device.cuda(0);
        assertEquals("none", tenmin.train.AutoCheckpointing.resolve(cfg, tiny, dev, new long[] {none + headroom, total},
                planner).policy().toString());
        var second1 = tenmin.train.AutoCheckpointing.resolve(cfg, tiny, dev, new long[] {second + headroom, total}, planner);
        assertEquals(candidates.get(1), second1.policy());
        assertTrue(second1.why().contains("none plans") && second1.why().endsWith("-> " + candidates.get(1)), second1.why());
        var tight = tenmin.train.AutoCheckpointing.resolve(cfg, tiny, dev, new long[] {all - 1 + headroom, total}, planner);
        assertEquals("all", tight.policy().toString());
        assertTrue(tight.why().contains("does not fit"), tight.why());
        var cpu = tenmin.train.AutoCheckpointing.resolve(cfg, tiny, tenmin.engine.api.Device.CPU, null, planner);
        assertEquals("all", cpu.policy().toString(), "no device memory: as --gradient_checkpointing");
    }

    @Test
    void randomModelReplacesTheCheckpointAndNeedsADataset() {
        List<String> a = guide();
        a.removeIf(s -> s.startsWith("--pretrained_model_name_or_path="));
        a.add("--random_model=small");
        TrainConfig c = parse(a, Reporter.SILENT);
        assertEquals("small", c.paths().randomModel());
        assertTrue(c.randomBase() && !c.demo());
        a.add("--pretrained_model_name_or_path=" + model);
        InputException both = assertThrows(InputException.class, () -> parse(a, Reporter.SILENT));
        assertTrue(both.getMessage().contains("--random_model") && both.getMessage().contains("exclude"), both.getMessage());
        InputException noData = assertThrows(InputException.class,
                () -> parse(List.of("--random_model=sdxl", "--output_dir=" + out), Reporter.SILENT));
        assertTrue(noData.getMessage().contains("--train_data_dir"), noData.getMessage());
        List<String> huge = guide();
        huge.removeIf(s -> s.startsWith("--pretrained_model_name_or_path="));
        huge.add("--random_model=huge");
        InputException bad = assertThrows(InputException.class, () -> parse(huge, Reporter.SILENT));
        assertTrue(bad.getMessage().contains("--random_model") && bad.getMessage().contains("huge"), bad.getMessage());
    }

    @Test
    void unknownFlagsAndKeysAreErrorsNamingThem() throws IOException {
        List<String> a = guide();
        a.add("--max_train_step=3");
        InputException e = assertThrows(InputException.class, () -> parse(a, Reporter.SILENT));
        assertTrue(e.getMessage().contains("--max_train_step") && e.getMessage().contains("did you mean --max_train_steps"),
                e.getMessage());
        Path toml = Files.writeString(tmp.resolve("bad.toml"), "[x]\nlearning_rat = 1e-4\n");
        InputException k = assertThrows(InputException.class,
                () -> parse(List.of("--config_file=" + toml), Reporter.SILENT));
        assertTrue(k.getMessage().contains("bad.toml") && k.getMessage().contains("learning_rat"), k.getMessage());
        Path typed = Files.writeString(tmp.resolve("typed.toml"), "max_train_steps = \"eighty\"\n");
        assertThrows(InputException.class, () -> parse(List.of("--config_file=" + typed), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("positional"), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("--max_train_steps=abc"), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("--flip_aug=yes"), Reporter.SILENT));
        List<String> net = guide();
        net.addAll(List.of("--network_args", "preset=full", "frobnicate=1"));
        InputException n = assertThrows(InputException.class, () -> parse(net, Reporter.SILENT));
        assertTrue(n.getMessage().contains("frobnicate"), n.getMessage());
    }

    @Test
    void contradictionsAndUnsupportedValuesFail() {
        List<List<String>> bad = List.of(
                List.of("--network_train_unet_only", "--network_train_text_encoder_only"),
                List.of("--lr_scheduler=constant", "--lr_warmup_steps=10"),
                List.of("--min_bucket_reso=4096"),
                List.of("--min_timestep=500", "--max_timestep=100"),
                List.of("--min_snr_gamma=-1"),
                List.of("--caption_dropout_rate=1.5"),
                List.of("--caption_tag_dropout_rate=-0.1"),
                List.of("--full_bf16"),
                List.of("--network_module=networks.lora"),
                List.of("--optimizer_type=Prodigy"),
                List.of("--optimizer_args", "frobnicate=1"),
                List.of("--lr_scheduler_args", "power=2"),
                List.of("--network_args", "use_tucker=0"),
                List.of("--network_args", "module_dropout=1.1"),
                List.of("--save_model_as=ckpt"),
                List.of("--log_with=wandb"),
                List.of("--bucket_reso_steps=36"),
                List.of("--save_precision=fp8"));
        for (List<String> extra : bad) {
            List<String> a = guide();
            a.addAll(extra);
            assertThrows(InputException.class, () -> parse(a, Reporter.SILENT), extra.toString());
        }
        // neutral values of unimplemented features are fine
        List<String> ok = guide();
        ok.addAll(List.of("--min_snr_gamma=0", "--caption_dropout_rate=0.0", "--network_dropout=0"));
        assertFalse(parse(ok, Reporter.SILENT).loop().lossWeighting().active(), "--min_snr_gamma=0 is off, as in kohya");
        // model without data
        assertThrows(InputException.class, () -> parse(List.of("--pretrained_model_name_or_path=" + model), Reporter.SILENT));
        // missing model file
        assertThrows(InputException.class, () -> parse(List.of("--pretrained_model_name_or_path=" + tmp.resolve("no"),
                "--train_data_dir=" + data, "--output_dir=" + out), Reporter.SILENT));
    }

    /**
     * {@code --fp8_base} is used with fp16 or bf16 mixed precision; with {@code --mixed_precision no} (also the
     * default) it is the reference's assertion as a one-line usage error naming the flag, before anything is written.
     */
    @Test
    void fp8BaseNeedsMixedPrecision() {
        assertFalse(parse(guide(), Reporter.SILENT).loop().fp8Base());
        List<String> bf16 = guide();
        bf16.add("--fp8_base");
        assertTrue(parse(bf16, Reporter.SILENT).loop().fp8Base());
        List<String> fp16 = guide();
        fp16.addAll(List.of("--fp8_base", "--mixed_precision=fp16"));
        assertTrue(parse(fp16, Reporter.SILENT).loop().fp8Base());
        List<String> no = guide();
        no.addAll(List.of("--fp8_base", "--mixed_precision=no"));
        InputException e = assertThrows(InputException.class, () -> parse(no, Reporter.SILENT));
        assertTrue(e.getMessage().startsWith("--fp8_base: ") && e.getMessage().contains("--mixed_precision fp16 or bf16"),
                e.getMessage());

        Cli.Run run = Cli.run("train", "--fp8_base", "--max_train_steps=1", "--output_dir=" + out);
        assertEquals(2, run.exit(), run.toString());
        assertTrue(run.err().contains("--fp8_base") && run.err().lines().count() == 1, run.toString());
        assertFalse(Files.exists(out), "nothing may be written");
    }

    @Test
    void kohyaDefaultsApply() {
        TrainConfig c = parse(List.of("--pretrained_model_name_or_path=" + model, "--train_data_dir=" + data,
                "--output_dir=" + out, "--seed=7"), Reporter.SILENT);
        assertFalse(c.demo());
        assertEquals(7, c.loop().seed());
        assertTrue(c.loop().seedGiven());
        assertEquals("AdamW", c.optim().type());
        assertEquals(2e-6, c.optim().learningRate());
        assertEquals(c.optim().learningRate(), c.optim().unetLr());
        assertEquals(LrSchedule.Kind.CONSTANT, c.schedule().kind());
        assertEquals(".caption", c.data().captionExtension());
        assertEquals(1600, c.loop().maxTrainSteps());
        assertEquals("fp16", c.save().precision());
        assertEquals(tenmin.lora.LoConPreset.TextEncoderModules.FULL, c.network().teModules());
        // LyCORIS create_network: network_dim None -> 4, conv_dim/conv_alpha default to network_dim/network_alpha
        assertEquals(4, c.network().dim());
        assertEquals(1.0, c.network().alpha());
        assertEquals(4, c.network().convDim());
        assertEquals(1.0, c.network().convAlpha());
        TrainConfig noConv = parse(List.of("--network_dim=8", "--network_alpha=4", "--network_args", "preset=full"),
                Reporter.SILENT);
        assertEquals(8, noConv.network().convDim());
        assertEquals(4.0, noConv.network().convAlpha());
        assertEquals(0, parse(List.of("--network_args", "conv_dim=0"), Reporter.SILENT).network().convDim());
        assertEquals(null, c.flags().get("network_dropout")); // kohya: None -> ss_network_dropout "None"
        // noise offset and multires noise together, as the reference allows (its exclusivity check is commented out)
        TrainConfig both = parse(List.of("--noise_offset=0.05", "--multires_noise_iterations=6"), Reporter.SILENT);
        assertEquals(0.05, both.loop().noise().offset());
        assertEquals(6, both.loop().noise().multiresIterations());
        // the other noise flags; an adaptive scale needs an offset (kohya's check)
        var noise = parse(List.of("--noise_offset=0.05", "--noise_offset_random_strength", "--adaptive_noise_scale=-0.01",
                "--ip_noise_gamma=0.1", "--ip_noise_gamma_random_strength"), Reporter.SILENT).loop().noise();
        assertEquals(new tenmin.train.noise.NoiseOptions(0.05, true, -0.01, noise.multiresIterations(),
                noise.multiresDiscount(), 0.1, true), noise);   // (the demo's multires noise stays)
        assertEquals(tenmin.train.noise.NoiseOptions.GAUSSIAN, c.loop().noise());
        // v-prediction and its companions, checked as the reference checks them
        TrainConfig v = parse(List.of("--v_parameterization", "--zero_terminal_snr", "--scale_v_pred_loss_like_noise_pred",
                "--min_snr_gamma=5"), Reporter.SILENT);
        assertTrue(v.loop().vPrediction() && v.loop().noise().zeroTerminalSnr());
        assertEquals(new tenmin.train.noise.LossWeighting(5, false, 1, true, true, 0), v.loop().lossWeighting());
        assertThrows(InputException.class, () -> parse(List.of("--scale_v_pred_loss_like_noise_pred"), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("--v_parameterization", "--v_pred_like_loss=0.1"),
                Reporter.SILENT));
        LogLines zLog = new LogLines();
        parse(List.of("--zero_terminal_snr"), zLog);
        assertEquals(1, zLog.count("WARNING", "--zero_terminal_snr without --v_parameterization"));
        // the other schedulers: cosine_with_min_lr takes half of --lr_scheduler_num_cycles and needs a minimum
        TrainConfig wsd = parse(List.of("--lr_scheduler=warmup_stable_decay", "--lr_scheduler_args", "--lr_decay_steps=0.25",
                "--lr_scheduler_min_lr_ratio=0.1", "--lr_scheduler_num_cycles=1"), Reporter.SILENT);
        assertEquals(25, wsd.schedule().build(100, 1e-4).decaySteps());
        assertEquals(0.5, wsd.schedule().numCycles());
        assertThrows(InputException.class, () -> parse(List.of("--lr_scheduler=cosine_with_min_lr", "--lr_scheduler_args"),
                Reporter.SILENT));
        assertEquals(40, parse(List.of("--lr_scheduler=inverse_sqrt", "--lr_scheduler_args", "--lr_scheduler_timescale=40"),
                Reporter.SILENT)
                .schedule().build(100, 1e-4).timescale());
        // long captions
        assertEquals(75, c.data().maxTokenLength());
        assertEquals(225, parse(List.of("--max_token_length=225"), Reporter.SILENT).data().maxTokenLength());
        assertThrows(InputException.class, () -> parse(List.of("--max_token_length=100"), Reporter.SILENT));
        // the loss function
        assertEquals(tenmin.train.noise.LossFunction.L2, c.loop().lossFunction());
        assertEquals(new tenmin.train.noise.LossFunction(tenmin.train.noise.LossFunction.Type.SMOOTH_L1,
                tenmin.train.noise.LossFunction.Schedule.EXPONENTIAL, 0.2), parse(List.of("--loss_type=smooth_l1",
                "--huber_schedule=exponential", "--huber_c=0.2"), Reporter.SILENT).loop().lossFunction());
        assertThrows(InputException.class, () -> parse(List.of("--loss_type=l1"), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("--loss_type=huber", "--huber_c=0"), Reporter.SILENT));
        // the caption flags
        assertEquals(tenmin.train.data.CaptionOptions.of(null, null, false, 0, ","), c.data().captions());
        assertEquals(new tenmin.train.data.CaptionOptions("pre", null, true, 2, ";", "|||", ";;;", 0.05, 3, 0.1),
                parse(List.of("--caption_prefix=pre", "--shuffle_caption", "--keep_tokens=2", "--caption_separator=;",
                        "--keep_tokens_separator=|||", "--secondary_separator=;;;", "--caption_dropout_rate=0.05",
                        "--caption_dropout_every_n_epochs=3", "--caption_tag_dropout_rate=0.1"), Reporter.SILENT)
                        .data().captions());
        InputException noOffset = assertThrows(InputException.class,
                () -> parse(List.of("--adaptive_noise_scale=0.01"), Reporter.SILENT));
        assertTrue(noOffset.getMessage().contains("--adaptive_noise_scale"), noOffset.getMessage());
        assertThrows(InputException.class, () -> parse(List.of("--ip_noise_gamma=-0.1"), Reporter.SILENT));
        // the SNR loss weightings
        assertEquals(tenmin.train.noise.LossWeighting.NONE, c.loop().lossWeighting());
        assertEquals(new tenmin.train.noise.LossWeighting(5, true), parse(List.of("--min_snr_gamma=5",
                "--debiased_estimation_loss"), Reporter.SILENT).loop().lossWeighting());
        assertEquals(null, c.compute().device());
        Map<String, Object> flags = c.flags();
        assertEquals(7L, flags.get("seed"));
        // a switch given twice and a value given twice: the last wins (argparse)
        assertEquals(20, parse(List.of("--max_train_steps", "10", "--max_train_steps", "20"), Reporter.SILENT)
                .loop().maxTrainSteps());
        // warm-up as a fraction of the run
        TrainConfig w = parse(List.of("--lr_scheduler=cosine", "--lr_warmup_steps=0.1"), Reporter.SILENT);
        assertEquals(8, w.schedule().warmupFor(80));
        // the reference run's text-encoder module set, and a fixed device
        TrainConfig mlp = parse(List.of("--text_encoder_modules=mlp", "--device=cpu"), Reporter.SILENT);
        assertEquals(tenmin.lora.LoConPreset.TextEncoderModules.MLP_ONLY, mlp.network().teModules());
        assertEquals(tenmin.engine.api.Device.CPU, mlp.compute().device());
        assertThrows(InputException.class, () -> parse(List.of("--device=tpu"), Reporter.SILENT));
        assertThrows(InputException.class, () -> parse(List.of("--text_encoder_modules=some"), Reporter.SILENT));
    }

    /** {@code --lr_scheduler piecewise_constant} with its step_rules, the reference's quoted form too. */
    @Test
    void piecewiseConstantTakesStepRules() {
        for (String rules : List.of("step_rules=1:10,0.1:20,0.01:30,0.005", "step_rules='1:10,0.1:20,0.01:30,0.005'",
                "step_rules=\"1:10,0.1:20,0.01:30,0.005\"")) {
            TrainConfig c = parse(List.of("--lr_scheduler=piecewise_constant", "--lr_scheduler_args", rules),
                    Reporter.SILENT);
            LrSchedule s = c.schedule().build(80, 1e-4);
            assertEquals(LrSchedule.Kind.PIECEWISE_CONSTANT, s.kind());
            assertEquals(List.of(1.0, 1.0, 0.1, 0.1, 0.01, 0.005, 0.005), List.of(s.factor(0), s.factor(9), s.factor(10),
                    s.factor(19), s.factor(29), s.factor(30), s.factor(79)), rules);
        }
        // a warm-up is not passed to the piecewise schedule by the reference: ignored here, with a warning
        LogLines log = new LogLines();
        TrainConfig warm = parse(List.of("--lr_scheduler=piecewise_constant", "--lr_scheduler_args",
                "step_rules=1:10,0.5", "last_epoch=-1", "--lr_warmup_steps=5"), log);
        assertEquals(1, log.count("WARNING", "--lr_warmup_steps is ignored by --lr_scheduler=piecewise_constant"),
                log.lines().toString());
        assertEquals(1.0, warm.schedule().build(80, 1e-4).factor(0), 0);
        assertEquals(5.0, warm.schedule().warmupSteps(), 0, "kept for ss_lr_warmup_steps, as the reference writes it");
        // what diffusers' function cannot take is refused naming --lr_scheduler_args and the reason
        Map<List<String>, String> bad = Map.of(
                List.of(), "needs step_rules",
                List.of("step_rules=1:10,0.1:20"), "must be a bare multiplier",
                List.of("step_rules=1:10,0.1:ten,0.5"), "'ten' in '0.1:ten' is not a whole step number",
                List.of("step_rules=1:10", "num_cycles=2"), "num_cycles is not an argument of the piecewise_constant",
                List.of("step_rules=0.5", "last_epoch=3"), "last_epoch=3 is not supported",
                List.of("step_rules=5"), "",
                List.of("step_rules=(1, 2)"), "'(1' is not multiplier:step");
        for (Map.Entry<List<String>, String> e : bad.entrySet()) {
            List<String> a = new ArrayList<>(List.of("--lr_scheduler=piecewise_constant", "--lr_scheduler_args"));
            a.addAll(e.getKey());
            if (e.getValue().isEmpty()) {
                assertEquals(5.0, parse(a, Reporter.SILENT).schedule().build(10, 1e-4).factor(3), 0, "a bare multiplier");
                continue;
            }
            InputException x = assertThrows(InputException.class, () -> parse(a, Reporter.SILENT), e.getKey().toString());
            assertTrue(x.getMessage().startsWith("--lr_scheduler_args: ") && x.getMessage().contains(e.getValue())
                    && !x.getMessage().contains("\n"), x.getMessage());
        }
    }

    /** {@code --token_warmup_min} and {@code --token_warmup_step} reach the caption options; bad values name the flag. */
    @Test
    void tokenWarmupFlags() {
        tenmin.train.data.CaptionOptions o = parse(List.of("--token_warmup_min=3", "--token_warmup_step=0.25"),
                Reporter.SILENT).data().captions();
        assertEquals(3, o.tokenWarmupMin());
        assertEquals(0.25, o.tokenWarmupStep(), 0);
        tenmin.train.data.CaptionOptions none = parse(List.of("--shuffle_caption"), Reporter.SILENT).data().captions();
        assertEquals(1, none.tokenWarmupMin());
        assertEquals(0.0, none.tokenWarmupStep(), 0);
        for (String flag : List.of("--token_warmup_min=-1", "--token_warmup_step=-2")) {
            InputException x = assertThrows(InputException.class, () -> parse(List.of(flag), Reporter.SILENT), flag);
            assertTrue(x.getMessage().startsWith(flag.substring(0, flag.indexOf('=')) + ": "), x.getMessage());
        }
        List<String> cached = guide();
        cached.addAll(List.of("--network_train_unet_only", "--cache_text_encoder_outputs", "--token_warmup_step=10"));
        cached.remove("--shuffle_caption");
        InputException x = assertThrows(InputException.class, () -> parse(cached, Reporter.SILENT));
        assertTrue(x.getMessage().contains("token_warmup_step") && x.getMessage().contains("cannot be cached"),
                x.getMessage());
        List<String> fixed = guide();
        fixed.addAll(List.of("--network_train_unet_only", "--cache_text_encoder_outputs"));
        fixed.remove("--shuffle_caption");
        assertTrue(parse(fixed, Reporter.SILENT).data().cacheTextEncoderOutputs(), "the same without the warm-up");
    }

    @Test
    void demoRunsTheRecipeMechanicsUnlessOverridden() {
        TrainConfig c = parse(List.of(), Reporter.SILENT);
        assertTrue(c.demo());
        assertEquals("ClybW", c.optim().type());
        assertEquals(LrSchedule.Kind.COSINE, c.schedule().kind());
        assertEquals(0.375, c.schedule().numCycles());
        assertEquals(2, c.loop().gradAccumSteps());
        assertTrue(c.loop().noise().multiresIterations() > 0);
        assertTrue(c.data().flipAug() && c.data().captions().shuffle() && c.data().cacheLatentsToDisk());
        assertEquals(Path.of("tenmin-demo"), c.paths().outputDir());
        assertEquals(Path.of("tenmin-demo", "logs"), c.log().loggingDir());
        assertEquals(42, c.loop().seed());
        // what the user gives wins, and the logs follow the output folder
        TrainConfig d = parse(List.of("--max_train_steps=3", "--output_dir=" + out, "--seed=5"), Reporter.SILENT);
        assertEquals(3, d.loop().maxTrainSteps());
        assertEquals(5, d.loop().seed());
        assertEquals(out.resolve("logs"), d.log().loggingDir());
    }

    @Test
    void commandValidatesThenStopsAtABrokenModelWritingNothing() throws IOException {
        Path cat = Files.createDirectories(data.resolve("10_ohwx cat"));
        for (int i = 0; i < 3; i++) {
            javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(96, 64, java.awt.image.BufferedImage.TYPE_INT_RGB),
                    "png", cat.resolve("img" + i + ".png").toFile());
        }
        String before = Cli.sha256(cat.resolve("img0.png"));
        List<String> a = new ArrayList<>(List.of("train"));
        a.addAll(guide());
        Cli.Run run = Cli.run(a.toArray(String[]::new));
        // pony.safetensors is not a safetensors file: a bad input, found when the model is loaded
        assertEquals(2, run.exit(), run.toString());
        assertTrue(run.err().contains("tenmin train: error: ") && run.err().contains("pony.safetensors"), run.toString());
        // 3 images x 10 repeats = 30 entries in one bucket -> 4 micro-batches of 8 -> 1 step per epoch -> 80 epochs
        assertTrue(run.err().contains("dataset: 3 images in 1 folders, 1 buckets used"), run.toString());
        assertTrue(run.err().contains("num train images * repeats: 30") && run.err().contains("num batches per epoch: 4")
                && run.err().contains("num epochs: 80") && run.err().contains("total optimization steps: 80"), run.toString());
        assertTrue(run.err().contains("samples: 1 prompt(s)"), run.toString());
        assertFalse(Files.exists(out), "nothing may be written");
        assertEquals(before, Cli.sha256(cat.resolve("img0.png")));
        assertEquals(List.of("10_ohwx cat", "sample-prompts.txt"), Cli.listing(data));

        Cli.Run bad = Cli.run("train", "--frobnicate");
        assertEquals(2, bad.exit(), bad.toString());
        assertTrue(bad.err().contains("unknown flag --frobnicate") && bad.err().lines().count() == 1, bad.toString());

        Cli.Run help = Cli.run("train", "--help");
        assertEquals(0, help.exit(), help.toString());
        assertTrue(help.out().contains("--optimizer_type") && help.out().contains("Exit codes"), help.toString());
    }
}
