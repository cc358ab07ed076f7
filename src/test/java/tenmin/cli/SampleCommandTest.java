package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.formats.A1111Parameters;
import tenmin.formats.PngFile;
import tenmin.formats.StDType;
import tenmin.lora.BlockWeights;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.sample.LoraSet;
import tenmin.sample.LoraSpec;
import tenmin.sample.PromptEncoder;
import tenmin.sample.Sampler;
import tenmin.sample.SamplerKind;
import tenmin.sample.SdxlPipeline;
import tenmin.testing.Cli;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;
import tenmin.testing.SyntheticLora;

/**
 * {@code tenmin sample} on the fixtures' tiny checkpoint: the PNG's A1111 {@code parameters} read back and
 * parsed to the settings used (hashes computed here from the files), names that never overwrite, prompt
 * files, bad input (exit 2, one line, no image), and LoRA application checked against the tools that write
 * files: strength s equals {@code tenmin merge} at s, a block vector with zeros equals {@code tenmin chop}.
 */
class SampleCommandTest extends CpuBackendTests {
    private static final ModelFixture FIXTURE = ModelFixture.of(Fixtures.modelDirs().getFirst());
    private static final String CKPT = FIXTURE.file("checkpoint.safetensors").toString();
    private static final String CONFIG = FIXTURE.file("config.json").toString();
    private static final String LOCON = FIXTURE.file("locon.safetensors").toString();
    private static final String TE_LOCON = FIXTURE.file("te-locon.safetensors").toString();

    /** {@code sample} on the tiny checkpoint with {@code extra}; 32x32 and 2 steps unless {@code extra} says otherwise. */
    private static List<String> args(String... extra) {
        List<String> a = new ArrayList<>(List.of("sample", "--model", CKPT, "--model-config", CONFIG, "--threads", "2"));
        List<String> given = List.of(extra);
        for (String[] d : new String[][] {{"--width", "32"}, {"--height", "32"}, {"--steps", "2"}}) {
            if (!given.contains(d[0])) {
                a.addAll(List.of(d));
            }
        }
        a.addAll(given);
        return a;
    }

    private static Cli.Run sample(String... extra) {
        return Cli.run(args(extra).toArray(String[]::new));
    }

    private static Map<String, String> parameters(Path png) {
        return A1111Parameters.parse(PngFile.readText(png).get("parameters"));
    }

    /** A1111's LoRA hash computed here: SHA-256 of the bytes after the 8-byte length and the JSON header, 12 hex digits. */
    private static String loraHash(String file) throws Exception {
        byte[] bytes = Files.readAllBytes(Path.of(file));
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        d.update(bytes, (int) (8 + n), (int) (bytes.length - 8 - n));
        return HexFormat.of().formatHex(d.digest()).substring(0, 12);
    }

    @Test
    void writesPngsWithTheSettingsInA1111Parameters(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        String prompt = "a (red:1.2) fox, [grainy], snow";
        Cli.Run r = sample("--prompt", prompt, "--negative", "blurry, low quality", "--width", "64", "--cfg", "5.5",
                "--seed", "123", "--sampler", "DPM++ 2M Karras", "--lora", LOCON + ":0.8", "--lora", TE_LOCON, "-o",
                out.toString());
        assertEquals(0, r.exit(), r.toString());
        Path png = out.resolve("00000-123.png");
        assertEquals(png.toString(), r.out().strip());
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(64, image.getWidth());
        assertEquals(32, image.getHeight());

        Map<String, String> p = parameters(png);
        assertEquals(prompt, p.get("Prompt"));
        assertEquals("blurry, low quality", p.get("Negative prompt"));
        assertEquals("2", p.get("Steps"));
        assertEquals("DPM++ 2M", p.get("Sampler"));
        assertEquals("Karras", p.get("Schedule type"));
        assertEquals("5.5", p.get("CFG scale"));
        assertEquals("123", p.get("Seed"));
        assertEquals("64x32", p.get("Size"));
        assertEquals("checkpoint", p.get("Model"));
        assertEquals(Cli.sha256(Path.of(CKPT)).substring(0, 10), p.get("Model hash"));
        assertEquals("CPU", p.get("RNG"));
        assertEquals("locon: " + loraHash(LOCON) + ", te-locon: " + loraHash(TE_LOCON), p.get("Lora hashes"));
        assertEquals("locon: 0.8, te-locon: 1.0", p.get("Lora weights"));
        assertTrue(p.get("Version").startsWith("tenmin "), p.toString());

        // a second run continues the numbering and leaves the first image alone
        String first = Cli.sha256(png);
        Cli.Run again = sample("--prompt", "a fox", "--seed", "7", "--batch", "2", "--no-model-hash", "-o", out.toString());
        assertEquals(0, again.exit(), again.toString());
        assertEquals(List.of("00000-123.png", "00001-7.png", "00002-8.png"), Cli.listing(out));
        assertEquals(first, Cli.sha256(png));
        assertEquals("8", parameters(out.resolve("00002-8.png")).get("Seed"));
        assertFalse(parameters(out.resolve("00001-7.png")).containsKey("Model hash"));
    }

    @Test
    void sameSeedAndSettingsGiveTheSameFile(@TempDir Path tmp) {
        for (String dir : new String[] {"a", "b"}) {
            Cli.Run r = sample("--prompt", "a fox", "--seed", "99", "--lora", LOCON + ":0.5", "-o", tmp.resolve(dir).toString());
            assertEquals(0, r.exit(), r.toString());
        }
        assertEquals(Cli.sha256(tmp.resolve("a/00000-99.png")), Cli.sha256(tmp.resolve("b/00000-99.png")));
    }

    @Test
    void mergedAndBypassLorasGiveTheSameImage(@TempDir Path tmp) throws IOException {
        for (String mode : new String[] {"merge", "bypass"}) {
            Cli.Run r = sample("--prompt", "a fox", "--seed", "99", "--lora", LOCON + ":0.5", "--lora", TE_LOCON,
                    "--lora-mode", mode, "-o", tmp.resolve(mode).toString());
            assertEquals(0, r.exit(), r.toString());
            assertEquals(mode.equals("merge"), r.err().contains("LoRAs merged into the weights"), r.toString());
        }
        java.awt.image.BufferedImage a = javax.imageio.ImageIO.read(tmp.resolve("merge/00000-99.png").toFile());
        java.awt.image.BufferedImage b = javax.imageio.ImageIO.read(tmp.resolve("bypass/00000-99.png").toFile());
        int worst = 0;
        for (int y = 0; y < a.getHeight(); y++) {
            for (int x = 0; x < a.getWidth(); x++) {
                int pa = a.getRGB(x, y);
                int pb = b.getRGB(x, y);
                for (int shift = 0; shift < 24; shift += 8) {
                    worst = Math.max(worst, Math.abs(((pa >> shift) & 0xFF) - ((pb >> shift) & 0xFF)));
                }
            }
        }
        assertTrue(worst <= 1, "merged and bypass images differ by " + worst + " levels");
        assertEquals(parameters(tmp.resolve("merge/00000-99.png")), parameters(tmp.resolve("bypass/00000-99.png")));
    }

    @Test
    void promptFileLinesCarryTheirOwnSettings(@TempDir Path tmp) throws IOException {
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "# samples\na cat --w 64 --h 64 --d 5 --s 3 --l 3 --n dark --ss ddim\n\na dog --d 6\n");
        Path out = tmp.resolve("out");
        Cli.Run r = sample("--prompts", prompts.toString(), "--negative", "ugly", "-o", out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals(List.of("00000-5.png", "00001-6.png"), Cli.listing(out));
        Map<String, String> a = parameters(out.resolve("00000-5.png"));
        assertEquals(List.of("a cat", "dark", "3", "DDIM", "3", "64x64"), List.of(a.get("Prompt"), a.get("Negative prompt"),
                a.get("Steps"), a.get("Sampler"), a.get("CFG scale"), a.get("Size")));
        Map<String, String> b = parameters(out.resolve("00001-6.png"));
        // kohya's rule for prompt files: sizes at least 64 (the default 32 becomes 64)
        assertEquals(List.of("a dog", "ugly", "2", "Euler a", "7", "64x64"), List.of(b.get("Prompt"), b.get("Negative prompt"),
                b.get("Steps"), b.get("Sampler"), b.get("CFG scale"), b.get("Size")));
    }

    /**
     * {@code --vae}: the image decoded by another VAE file (the checkpoint's own VAE, copied without the
     * {@code first_stage_model.} prefix and its output convolution doubled) differs, and the PNG records A1111's
     * "VAE hash" (first 10 hex digits of the file's SHA-256, computed here) and "VAE" (the file name).
     */
    @Test
    void aSeparateVaeDecodesAndIsRecorded(@TempDir Path tmp) throws Exception {
        tenmin.formats.SafetensorsWriter w = new tenmin.formats.SafetensorsWriter();
        try (tenmin.formats.SafetensorsFile in = tenmin.formats.SafetensorsFile.open(Path.of(CKPT))) {
            for (String k : in.names()) {
                if (k.startsWith("first_stage_model.")) {
                    float[] v = in.readFloats(k);
                    if (k.endsWith("decoder.conv_out.weight")) {
                        for (int i = 0; i < v.length; i++) {
                            v[i] *= 2;
                        }
                    }
                    w.addFloats(k.substring("first_stage_model.".length()), StDType.F32, in.info(k).shape(), v);
                }
            }
        }
        Path vae = tmp.resolve("my_vae.safetensors");
        w.write(vae);
        Cli.Run own = sample("--prompt", "a fox", "--seed", "7", "-o", tmp.resolve("own").toString());
        Cli.Run other = sample("--prompt", "a fox", "--seed", "7", "--vae", vae.toString(), "-o",
                tmp.resolve("other").toString());
        assertEquals(0, own.exit(), own.toString());
        assertEquals(0, other.exit(), other.toString());
        assertFalse(Cli.sha256(tmp.resolve("own/00000-7.png")).equals(Cli.sha256(tmp.resolve("other/00000-7.png"))));
        Map<String, String> p = parameters(tmp.resolve("other/00000-7.png"));
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(vae)));
        assertEquals(sha.substring(0, 10), p.get("VAE hash"));
        assertEquals("my_vae.safetensors", p.get("VAE"));
        assertEquals(null, parameters(tmp.resolve("own/00000-7.png")).get("VAE"));
        Cli.Run missing = sample("--prompt", "a fox", "--vae", tmp.resolve("none.safetensors").toString(), "-o",
                tmp.resolve("x").toString());
        assertEquals(2, missing.exit(), missing.toString());
        assertTrue(missing.err().contains("--vae"), missing.toString());
    }

    /** {@code --v-prediction} reads the model's output as v (the conversion itself: VPredictionSamplingTest). */
    @Test
    void vPredictionChangesHowTheOutputIsRead(@TempDir Path tmp) {
        Cli.Run eps = sample("--prompt", "a fox", "--seed", "5", "-o", tmp.resolve("eps").toString());
        Cli.Run v = sample("--prompt", "a fox", "--seed", "5", "--v-prediction", "-o", tmp.resolve("v").toString());
        assertEquals(0, eps.exit(), eps.toString());
        assertEquals(0, v.exit(), v.toString());
        assertFalse(Cli.sha256(tmp.resolve("eps/00000-5.png")).equals(Cli.sha256(tmp.resolve("v/00000-5.png"))));
    }

    @Test
    void randomTinyModelNeedsNoCheckpoint(@TempDir Path tmp) {
        Cli.Run r = Cli.run("sample", "--random-model", "tiny", "--width", "32", "--height", "32", "--steps", "1",
                "--prompt", "x", "--seed", "1", "-o", tmp.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals("random-tiny-0", parameters(tmp.resolve("00000-1.png")).get("Model"));
    }

    @Test
    void badInputExitsTwoWithOneLineAndWritesNoImage(@TempDir Path tmp) throws IOException {
        Path notLora = Files.writeString(tmp.resolve("notes.safetensors"), "not a safetensors file");
        Path diffusersNames = tmp.resolve("diffusers.safetensors");
        SyntheticLora.write(diffusersNames, List.of(new SyntheticLora.Module("lora_unet_down_blocks_1_attentions_0_proj_in",
                64, 64, 1, false, 4, 2)), StDType.F16, 1, Map.of());
        Path sdxlShaped = tmp.resolve("sdxl-shaped.safetensors");
        SyntheticLora.write(sdxlShaped, List.of(new SyntheticLora.Module("lora_unet_input_blocks_4_1_proj_in",
                640, 640, 1, false, 4, 2)), StDType.F16, 1, Map.of());
        Path badPrompts = Files.writeString(tmp.resolve("bad-prompts.txt"), "ok --w 64\nwide --w 123\n");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        String lora = LOCON;
        String loraSum = Cli.sha256(Path.of(lora));
        Object[][] cases = {
                {List.of("--prompt", "a (cat:1.2.3)"), "attention weight"},
                {List.of("--prompt", "<lora:style:0.8> a cat"), "<lora:style:0.8>"},
                {List.of("--prompt", "a [cat:dog:0.5]"), "prompt editing"},
                {List.of("--prompt", "a [cat|dog]"), "alternation"},
                {List.of("--prompt", "x", "--negative", "(bad:1.2.3)"), "negative prompt"},
                {List.of("--prompt", "x", "--width", "100"), "multiple of 8"},
                {List.of("--prompt", "x", "--height", "72"), "multiple of 32"},
                {List.of("--prompt", "x", "--steps", "0"), "steps"},
                {List.of("--prompt", "x", "--sampler", "heun"), "unknown sampler"},
                {List.of("--prompt", "x", "--sampler", "ddim", "--schedule", "karras"), "DDIM has no Karras"},
                {List.of("--prompt", "x", "--seed", "-5"), "seed -5"},
                {List.of("--prompt", "x", "--cfg", "-1"), "CFG scale"},
                {List.of("--prompt", "x", "--batch", "0"), "--batch"},
                {List.of("--prompt", "x", "--precision", "fp8"), "--precision fp8"},
                {List.of("--prompt", "x", "--lora-mode", "fuse"), "--lora-mode fuse"},
                {List.of(), "either --prompt"},
                {List.of("--prompts", badPrompts.toString()), "bad-prompts.txt prompt 2: width 120"},
                {List.of("--prompts", tmp.resolve("missing.txt").toString()), "missing.txt"},
                {List.of("--prompt", "x", "--lora", tmp.resolve("missing.safetensors").toString()), "no such file"},
                {List.of("--prompt", "x", "--lora", notLora.toString()), "notes.safetensors"},
                {List.of("--prompt", "x", "--lora", CKPT), "checkpoint.safetensors"},
                {List.of("--prompt", "x", "--lora", lora + ":1:1,0,x"), "block"},
                {List.of("--prompt", "x", "--lora", lora + ":1e999"), "not a finite number"},
                {List.of("--prompt", "x", "--lora", diffusersNames.toString()), "no layer in this model: lora_unet_down_blocks"},
                {List.of("--prompt", "x", "--lora", sdxlShaped.toString()), "lora_unet_input_blocks_4_1_proj_in has lora_down [4, 640]"},
                {List.of("--prompt", "x", "-o", file.toString()), "not a folder"},
        };
        for (Object[] c : cases) {
            @SuppressWarnings("unchecked")
            List<String> extra = new ArrayList<>((List<String>) c[0]);
            Path out = tmp.resolve("out");
            if (!extra.contains("-o")) {
                extra.addAll(List.of("-o", out.toString()));
            }
            Cli.Run r = sample(extra.toArray(String[]::new));
            assertEquals(2, r.exit(), extra + ": " + r);
            assertTrue(r.err().contains((String) c[1]), extra + ": expected '" + c[1] + "' in: " + r.err());
            assertEquals(1, r.err().lines().filter(l -> l.contains("error")).count(), extra + ": one error line: " + r.err());
            assertTrue(r.err().strip().lines().reduce((a, b) -> b).orElse("").contains((String) c[1]), extra + ": " + r.err());
            assertTrue(!Files.exists(out) || Cli.listing(out).isEmpty(), extra + ": wrote " + (Files.exists(out) ? Cli.listing(out) : ""));
        }
        // usage errors: picocli's message first, then the usage text
        Cli.Run usage = sample("x", "-o", tmp.resolve("out").toString());
        assertEquals(2, usage.exit(), usage.toString());
        assertTrue(usage.err().lines().findFirst().orElse("").contains("Unmatched argument"), usage.err());
        // a LoRA given as the model
        Cli.Run r = Cli.run("sample", "--model", lora, "--prompt", "x", "-o", tmp.resolve("out2").toString());
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("this is a LoRA"), r.err());
        Cli.Run m = Cli.run("sample", "--model", tmp.resolve("none.safetensors").toString(), "--prompt", "x", "-o",
                tmp.resolve("out2").toString());
        assertEquals(2, m.exit(), m.toString());
        assertTrue(m.err().contains("no such file"), m.err());
        assertFalse(Files.exists(tmp.resolve("out2")));
        assertEquals(loraSum, Cli.sha256(Path.of(lora)), "the LoRA is untouched");
    }

    // ---- LoRA application against the file tools ------------------------------------------------

    /** Final latents of one render with the given model file and LoRAs. */
    private static float[] render(Path checkpoint, List<LoraSpec> loras) {
        SdxlPipeline.Settings s = new SdxlPipeline.Settings("a red fox, snow", "blurry", 32, 32,
                Sampler.Settings.of(SamplerKind.EULER_A, 3), 5.0);
        SdxlConfig config = SdxlConfig.fromConfigFile(Path.of(CONFIG));
        try (Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.load(checkpoint, config, root, SdxlDtypes.fp32());
             LoraSet set = LoraSet.attach(LoraSet.prepare(loras, config, BlockWeights.Options.defaults(), Reporter.SILENT),
                     models, root)) {
            SdxlPipeline p = new SdxlPipeline(models, set, PromptEncoder.Options.A1111, Reporter.SILENT);
            return p.render(root, s, List.of(new SdxlPipeline.Job(31, null))).getFirst().latent();
        } finally {
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        }
    }

    @Test
    void loraStrengthEqualsMergingItIntoTheWeights(@TempDir Path tmp) {
        Path merged = tmp.resolve("merged.safetensors");
        Cli.Run r = Cli.run("merge", CKPT, LOCON + ":0.7", TE_LOCON + ":0.7", "-o", merged.toString());
        assertEquals(0, r.exit(), r.toString());
        float[] viaMerge = render(merged, List.of());
        float[] viaBranches = render(Path.of(CKPT), List.of(new LoraSpec(Path.of(LOCON), 0.7, null),
                new LoraSpec(Path.of(TE_LOCON), 0.7, null)));
        float[] without = render(Path.of(CKPT), List.of());
        Numerics.assertRelClose("LoRA at 0.7 vs merged at 0.7", new long[] {1, 4, 4, 4}, viaMerge, viaBranches, 1e-4);
        assertTrue(Numerics.diff(without, viaBranches).rel() > 0.05, "the LoRA changes the latents");
    }

    @Test
    void blockVectorWithZerosEqualsAChoppedLora(@TempDir Path tmp) {
        // fixture LoCon: 20 blocks (input 1..8, middle 0..2, output 0..8); keep INP04, MID01, OUT00, OUT05
        String chopVector = "1,0,0,0,1,0,0,0,0,0,1,0,1,0,0,0,0,1,0,0,0";
        String inspire = "1" + chopVector.substring(1); // BASE = 1 (chop keeps the text encoders)
        Path chopped = tmp.resolve("chopped.safetensors");
        Cli.Run r = Cli.run("chop", LOCON, chopVector, "-o", chopped.toString());
        assertEquals(0, r.exit(), r.toString());
        float[] viaChop = render(Path.of(CKPT), List.of(new LoraSpec(chopped, 1, null), new LoraSpec(Path.of(TE_LOCON), 1, null)));
        float[] viaVector = render(Path.of(CKPT), List.of(new LoraSpec(Path.of(LOCON), 1, inspire),
                new LoraSpec(Path.of(TE_LOCON), 1, null)));
        assertArrayEquals(viaChop, viaVector);
        float[] full = render(Path.of(CKPT), List.of(new LoraSpec(Path.of(LOCON), 1, null), new LoraSpec(Path.of(TE_LOCON), 1, null)));
        assertFalse(java.util.Arrays.equals(full, viaVector), "the zeros removed something");
    }
}
