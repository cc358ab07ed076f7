package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.TrainRuns;

/**
 * {@code --fp8_base} on the cpu backend (fp8 weights, fp32 compute): a short run of the toy recipe has finite losses
 * that differ from the plain run's and equals, loss for loss and LoRA value for value, the plain run on a checkpoint
 * whose U-Net and text-encoder weights were rounded to fp8 values beforehand (written here with the codec, the text
 * encoders' token and position embeddings and the VAE left as they are). With the text-encoder outputs cached only
 * the U-Net is fp8, as in the reference, which converts only text encoders that sit on the GPU. Samples render from
 * the fp8 weights.
 */
class Fp8BaseTest {
    @TempDir
    static Path tmp;
    static Path data;

    @BeforeAll
    static void dataset() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.BLUE, "ohwx, blue disc");
    }

    /** The token and position embeddings of both text encoders, which kohya keeps out of fp8. */
    static boolean textEmbedding(String key) {
        return key.endsWith("text_model.embeddings.token_embedding.weight")
                || key.endsWith("text_model.embeddings.position_embedding.weight")
                || key.equals("conditioner.embedders.1.model.token_embedding.weight")
                || key.equals("conditioner.embedders.1.model.positional_embedding");
    }

    /**
     * The fixture checkpoint with its U-Net weights rounded to fp8, and, when {@code textEncoders}, its text encoders'
     * (embeddings aside) rounded to {@code teVia} and then to fp8; integer tensors and the VAE copied as they are.
     */
    static Path preRounded(Path out, boolean textEncoders, DType teVia) throws Exception {
        SafetensorsWriter w = new SafetensorsWriter();
        int unet = 0;
        int te = 0;
        try (SafetensorsFile src = SafetensorsFile.open(TrainRuns.checkpoint())) {
            for (String key : src.names()) {
                long[] shape = src.info(key).shape();
                if (src.info(key).dtype() == StDType.I64) {
                    w.addLongs(key, shape, src.readLongs(key));
                    continue;
                }
                float[] v = src.readFloats(key);
                boolean isUnet = key.startsWith("model.diffusion_model.");
                boolean isTe = key.startsWith("conditioner.embedders.") && !textEmbedding(key);
                if (isUnet || (isTe && textEncoders)) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = Fp8E4m3.round(isUnet || teVia == DType.F32 ? v[i] : Half.roundTo(v[i], teVia.stDType()));
                    }
                    if (isUnet) {
                        unet++;
                    } else {
                        te++;
                    }
                }
                w.addFloats(key, StDType.F32, shape, v);
            }
        }
        assertTrue(unet > 100 && (te > 50) == textEncoders, unet + " U-Net and " + te + " text-encoder tensors rounded");
        w.write(out);
        return out;
    }

    static Trainer.Result train(String name, Path checkpoint, String... extra) {
        List<String> args = new ArrayList<>(TrainRuns.args(data, tmp.resolve(name), "--max_train_steps=2",
                "--mixed_precision=bf16", "--save_precision=float"));
        if (checkpoint != null) {
            args.add("--pretrained_model_name_or_path=" + checkpoint);
        }
        args.addAll(List.of(extra));
        if (args.contains("--cache_text_encoder_outputs")) {
            args.remove("--shuffle_caption");                // cached captions must not change between draws
        }
        Trainer.Result r = TrainRuns.train(TrainTestConfigs.parse(args), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        return r;
    }

    /** The pixels of the one sample image a run rendered. */
    static int[] samplePixels(Trainer.Result r) throws Exception {
        Path dir = r.lastLora().resolveSibling("sample");
        List<Path> pngs;
        try (var files = Files.list(dir)) {
            pngs = files.filter(p -> p.toString().endsWith(".png") && !p.endsWith("montage.png")).toList();
        }
        assertEquals(1, pngs.size(), pngs.toString());
        java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(pngs.getFirst().toFile());
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    @Test
    void equalsTheRunOnACheckpointRoundedToFp8() throws Exception {
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "ohwx, blue disc --w 64 --h 64 --s 3 --d 5\n");
        String[] sampled = {"--sample_prompts=" + prompts, "--sample_every_n_steps=2"};
        Trainer.Result plain = train("plain", null, sampled);
        Trainer.Result fp8 = train("fp8", null, concat(sampled, "--fp8_base"));
        Trainer.Result rounded = train("rounded", preRounded(tmp.resolve("rounded.safetensors"), true, DType.F32),
                sampled);
        assertEquals(4, fp8.losses().size(), "2 steps of 2 micro-batches");
        for (float loss : fp8.losses()) {
            assertTrue(Float.isFinite(loss) && loss > 0, fp8.losses().toString());
        }
        assertNotEquals(plain.losses(), fp8.losses(), "fp8 weights change the losses");
        assertEquals(rounded.losses(), fp8.losses(), "the rounded checkpoint's losses, bit for bit");
        assertArrayEquals(TrainRuns.flat(rounded.lastLora()), TrainRuns.flat(fp8.lastLora()), "and its LoRA");
        assertArrayEquals(samplePixels(rounded), samplePixels(fp8), "samples render from the fp8 weights");
        assertFalse(Arrays.equals(samplePixels(plain), samplePixels(fp8)), "and differ from the plain run's");
        try (SafetensorsFile f = SafetensorsFile.open(fp8.lastLora())) {
            assertEquals("bf16", f.metadata().get("ss_mixed_precision"));
            assertTrue(f.metadata().keySet().stream().noneMatch(k -> k.contains("fp8")), "no fp8 key, as kohya");
        }
    }

    @Test
    void withCachedTextEncoderOutputsOnlyTheUnetIsFp8() throws Exception {
        String[] cached = {"--cache_text_encoder_outputs", "--network_train_unet_only"};
        Trainer.Result fp8 = train("fp8-cached", null, concat(cached, "--fp8_base"));
        Path unetRounded = preRounded(tmp.resolve("unet-rounded.safetensors"), false, DType.F32);
        Path allRounded = preRounded(tmp.resolve("all-rounded.safetensors"), true, DType.F32);
        assertEquals(train("unet-rounded", unetRounded, cached).losses(), fp8.losses());
        assertNotEquals(train("all-rounded", allRounded, cached).losses(), fp8.losses(),
                "the cached outputs come from the text encoders' own weights");
        assertTrue(Files.exists(fp8.lastLora()));
    }

    private static String[] concat(String[] a, String... b) {
        List<String> all = new ArrayList<>(List.of(a));
        all.addAll(List.of(b));
        return all.toArray(String[]::new);
    }
}
