package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.PngFile;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.testing.Cli;
import tenmin.testing.Fixtures;
import tenmin.testing.LogLines;
import tenmin.testing.TrainRuns;

/**
 * One short training run from the fixtures' tiny checkpoint, then everything it wrote: the LoRA files (key
 * set and shapes of lora-modules.json — the fixture LoCon's 258 U-Net and 36 text-encoder modules — in fp16,
 * with kohya's metadata and an independently recomputed sshs_model_hash), the training states, the latent
 * cache files, the samples with A1111 parameters, the montage and the TensorBoard event file.
 */
class TrainerOutputsTest {
    @TempDir
    static Path tmp;
    static Path out;
    static Trainer.Result result;
    static LogLines log = new LogLines();

    @BeforeAll
    static void train() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "3_ohwx disc", 4, Color.RED, "ohwx, red disc, white background");
        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "ohwx, red disc --w 64 --h 64 --d 5 --s 3 --l 3 --n blurry\n"
                + "a blue disc --w 64 --h 64 --s 2 --l 1\n");
        out = tmp.resolve("out");
        result = TrainRuns.train(TrainRuns.config(data, out, "--max_train_steps=4", "--output_name=toy",
                "--sample_prompts=" + prompts, "--sample_every_n_steps=2", "--logging_dir=" + tmp.resolve("logs"),
                "--log_prefix=toy-", "--cache_latents_to_disk"), log);
    }

    @Test
    void completesEveryStep() {
        assertEquals(Trainer.Outcome.COMPLETED, result.outcome(), result.message());
        assertEquals(4, result.steps());
        // 4 images x 3 repeats = 12 entries, batch 2 → 6 micro-batches per epoch, accumulation 2 → 3 steps per epoch
        assertEquals(8, result.losses().size());
        assertEquals(out.resolve("toy.safetensors"), result.lastLora());
        for (String name : List.of("toy-step00000002", "toy-step00000004", "toy")) {
            assertTrue(Files.isRegularFile(out.resolve(name + ".safetensors")), name);
            // without --save_state only the final save carries a resume state (1.4 GB at the recipe's size)
            assertEquals(name.equals("toy"), Files.isRegularFile(out.resolve(name + ".tenmin-state")), name);
        }
        assertEquals(1, log.count("INFO:", "num epochs: 2"), String.join("\n", log.lines()));
        Trainer.Timings t = result.timings();
        double[] phases = {t.setup(), t.caching(), t.training(), t.sampling(), t.saving()};
        for (double p : phases) {
            assertTrue(p > 0, t.line()); // this run samples every 2 steps and saves every 2
        }
        assertEquals(t.total(), t.setup() + t.caching() + t.training() + t.sampling() + t.saving(), 1e-6, t.line());
    }

    @Test
    void loraHasTheFixtureKeySetShapesAndDtype() throws IOException {
        JsonNode modules = new ObjectMapper().readTree(Fixtures.require("lora-modules.json").toFile());
        Map<String, long[]> expected = new TreeMap<>();
        List<String> stateDictOrder = new ArrayList<>();
        for (String section : List.of("te", "unet")) {
            for (JsonNode m : modules.get(section)) {
                String name = m.get("lora_name").asText();
                int rank = m.get("rank").asInt();
                int in = m.get("in").asInt();
                int outCh = m.get("out").asInt();
                int k = m.get("kernel").asInt();
                boolean conv = m.get("kind").asText().equals("conv");
                expected.put(name + ".lora_down.weight", conv ? new long[] {rank, in, k, k} : new long[] {rank, in});
                expected.put(name + ".lora_up.weight", conv ? new long[] {outCh, rank, 1, 1} : new long[] {outCh, rank});
                expected.put(name + ".alpha", new long[0]);
                stateDictOrder.addAll(List.of(name + ".alpha", name + ".lora_up.weight", name + ".lora_down.weight"));
            }
        }
        assertEquals(3 * (258 + 36), expected.size());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("toy.safetensors"))) {
            assertEquals(expected.keySet(), new java.util.TreeSet<>(f.names()));
            for (Map.Entry<String, long[]> e : expected.entrySet()) {
                TensorInfo info = f.info(e.getKey());
                assertEquals(StDType.F16, info.dtype(), e.getKey());
                assertEquals(java.util.Arrays.toString(e.getValue()), java.util.Arrays.toString(info.shape()), e.getKey());
            }
            for (JsonNode m : modules.get("unet")) {
                assertEquals(m.get("alpha").asDouble(), f.readScalar(m.get("lora_name").asText() + ".alpha"));
            }
            // LyCORIS' sshs_model_hash: SHA-256 over the stored bytes of every tensor in state-dict order
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String key : stateDictOrder) {
                sha.update(f.segment(key).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            }
            Map<String, String> meta = f.metadata();
            assertEquals("0x" + HexFormat.of().formatHex(sha.digest()), meta.get("sshs_model_hash"));
            assertEquals(Cli.sha256(TrainRuns.checkpoint()), meta.get("ss_new_sd_model_hash"));
            assertEquals("checkpoint.safetensors", meta.get("ss_sd_model_name"));
            assertEquals("4", meta.get("ss_steps"));
            assertEquals("2", meta.get("ss_epoch"));
            assertEquals("2", meta.get("ss_num_epochs"));
            assertEquals("12", meta.get("ss_num_train_images"));
            assertEquals("6", meta.get("ss_num_batches_per_epoch"));
            assertEquals("4", meta.get("ss_network_dim"));
            assertEquals("2.0", meta.get("ss_network_alpha"));
            assertEquals("lycoris.kohya", meta.get("ss_network_module"));
            assertEquals("library.optimizers.clybius.Compass", meta.get("ss_optimizer"));
            assertEquals("cosine", meta.get("ss_lr_scheduler"));
            assertEquals("0.001", meta.get("ss_unet_lr"));
            assertEquals("0.0005", meta.get("ss_text_encoder_lr"));
            assertEquals("7", meta.get("ss_seed"));
            assertEquals("toy", meta.get("ss_output_name"));
            assertEquals("{\"3_ohwx disc\": {\"n_repeats\": 3, \"img_count\": 4}}", meta.get("ss_dataset_dirs"));
            assertTrue(meta.get("ss_tag_frequency").contains("\"red disc\": 4"), meta.get("ss_tag_frequency"));
            assertEquals("stable-diffusion-xl-v1-base/lora", meta.get("modelspec.architecture"));
            assertEquals("64x64", meta.get("modelspec.resolution"));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (SafetensorsFile step2 = SafetensorsFile.open(out.resolve("toy-step00000002.safetensors"))) {
            assertEquals("2", step2.metadata().get("ss_steps"));
            assertEquals("0", step2.metadata().get("ss_epoch"));
        }
    }

    @Test
    void textEncoderOneLastLayerIsNeverTrained() throws IOException {
        // fixtures README Q4: TE1's last layer cannot influence the penultimate state; its LoRA stays as initialised
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("toy.safetensors"))) {
            float[] up = f.readFloats("lora_te1_text_model_encoder_layers_2_mlp_fc1.lora_up.weight");
            for (float v : up) {
                assertEquals(0f, v);
            }
            float[] trained = f.readFloats("lora_te1_text_model_encoder_layers_1_mlp_fc1.lora_up.weight");
            float max = 0;
            for (float v : trained) {
                max = Math.max(max, Math.abs(v));
            }
            assertTrue(max > 0, "layer 1 of TE1 was trained");
        }
    }

    @Test
    void writesLatentCacheSamplesMontageAndTensorBoard() throws IOException {
        for (int i = 0; i < 4; i++) {
            assertTrue(Files.isRegularFile(tmp.resolve("data/3_ohwx disc/img" + i + ".npz")));
        }
        List<String> samples = Cli.listing(out.resolve("sample"));
        // steps 2 and 4, two prompts each, plus the montage; seeded prompts carry their seed in the name
        assertEquals(5, samples.size(), samples.toString());
        assertTrue(samples.stream().anyMatch(s -> s.matches("toy_000002_00_\\d{14}_5\\.png")), samples.toString());
        assertTrue(samples.stream().anyMatch(s -> s.matches("toy_000004_01_\\d{14}\\.png")), samples.toString());
        assertTrue(samples.contains("toy_montage.png"));
        Path first = out.resolve("sample").resolve(samples.stream().filter(s -> s.startsWith("toy_000002_00")).findFirst().orElseThrow());
        String params = PngFile.readText(first).get("parameters");
        assertNotNull(params);
        assertTrue(params.startsWith("ohwx, red disc\nNegative prompt: blurry\nSteps: 3, Sampler: Euler a, "), params);
        assertTrue(params.contains("Seed: 5") && params.contains("Size: 64x64"), params);
        Path logFile = result.outputs().get("TensorBoard log");
        assertNotNull(logFile);
        assertTrue(logFile.startsWith(tmp.resolve("logs")), logFile.toString());
        assertTrue(logFile.getParent().getParent().getFileName().toString().startsWith("toy-"));
        String events = new String(Files.readAllBytes(logFile), java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String tag : List.of("loss/current", "loss/average", "loss/epoch", "lr/unet", "lr/textencoder", "sample/00")) {
            assertTrue(events.contains(tag), tag + " in " + logFile);
        }
        assertFalse(Files.exists(out.resolve("last.safetensors")), "output_name replaces kohya's default names");
    }
}
