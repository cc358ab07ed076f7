package tenmin.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.testing.Cli;
import tenmin.testing.DenseDelta;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

/**
 * {@code tenmin merge}: the fixture LoCon and text-encoder LoCon baked into the tiny checkpoint, compared
 * with {@code W + w·(alpha/r)·up@down} computed here in double (conv: {@code [out, r] @ [r, in·k·k]}; text
 * encoder 2 q/k/v into rows 0..C, C..2C, 2C..3C of {@code in_proj_weight}).
 */
class MergeTest {
    private static final String TE2 = "conditioner.embedders.1.model.transformer.resblocks.";

    private static Path dir() {
        return Fixtures.modelDirs().get(0);
    }

    /** The LoRA modules that write into checkpoint key {@code key} (forward naming rule), with their row chunk. */
    private static Map<String, Integer> modulesFor(String key) {
        Map<String, Integer> out = new HashMap<>();
        String unet = "model.diffusion_model.";
        String te1 = "conditioner.embedders.0.transformer.text_model.encoder.layers.";
        if (key.startsWith(unet) && key.endsWith(".weight")) {
            out.put("lora_unet_" + key.substring(unet.length(), key.length() - 7).replace('.', '_'), -1);
        } else if (key.startsWith(te1) && key.endsWith(".weight")) {
            out.put("lora_te1_text_model_encoder_layers_" + key.substring(te1.length(), key.length() - 7).replace('.', '_'), -1);
        } else if (key.startsWith(TE2)) {
            String rest = key.substring(TE2.length());
            String layer = rest.substring(0, rest.indexOf('.'));
            String p = "lora_te2_text_model_encoder_layers_" + layer + "_";
            switch (rest.substring(rest.indexOf('.') + 1)) {
                case "attn.in_proj_weight" -> {
                    out.put(p + "self_attn_q_proj", 0);
                    out.put(p + "self_attn_k_proj", 1);
                    out.put(p + "self_attn_v_proj", 2);
                }
                case "attn.out_proj.weight" -> out.put(p + "self_attn_out_proj", -1);
                case "mlp.c_fc.weight" -> out.put(p + "mlp_fc1", -1);
                case "mlp.c_proj.weight" -> out.put(p + "mlp_fc2", -1);
                default -> {
                }
            }
        }
        return out;
    }

    /** W + Σ weight·(alpha/r)·up@down in double, or null when no module of {@code loras} touches {@code key}. */
    private static float[] expected(SafetensorsFile ckpt, String key, List<SafetensorsFile> loras, List<Double> weights) {
        TensorInfo t = ckpt.info(key);
        if (modulesFor(key).isEmpty() || t.rank() < 2) {
            return null;
        }
        float[] w = ckpt.readFloats(key);
        double[] acc = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            acc[i] = w[i];
        }
        int cols = (int) (t.numel() / t.dim(0));
        boolean touched = false;
        for (Map.Entry<String, Integer> e : modulesFor(key).entrySet()) {
            for (int l = 0; l < loras.size(); l++) {
                SafetensorsFile lora = loras.get(l);
                String m = e.getKey();
                if (!lora.contains(m + ".lora_up.weight")) {
                    continue;
                }
                touched = true;
                DenseDelta.Delta d = DenseDelta.of(lora, m); // (alpha/r)·[out, r]@[r, in·k·k]
                assertEquals(cols, d.cols(), m + " columns");
                int rowOffset = e.getValue() < 0 ? 0 : e.getValue() * d.rows();
                for (int i = 0; i < d.values().length; i++) {
                    acc[rowOffset * cols + i] += weights.get(l) * d.values()[i];
                }
            }
        }
        if (!touched) {
            return null;
        }
        float[] out = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            out[i] = (float) acc[i];
        }
        return out;
    }

    private static byte[] bytes(SafetensorsFile f, String key) {
        return f.segment(key).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void mergesUnetAndTextEncoderLoconsIntoTheTinyCheckpoint(@TempDir Path tmp) throws IOException {
        Path ckptPath = dir().resolve("checkpoint.safetensors");
        Path locon = dir().resolve("locon.safetensors");
        Path te = dir().resolve("te-locon.safetensors");
        Path out = tmp.resolve("merged.safetensors");
        String before = Cli.sha256(ckptPath);
        Cli.Run r = Cli.run("merge", ckptPath.toString(), locon + ":0.5", te.toString(), "-o", out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("Merged 294 LoRA modules from 2 file(s)"), r.out());
        assertEquals(before, Cli.sha256(ckptPath));
        try (SafetensorsFile ckpt = SafetensorsFile.open(ckptPath); SafetensorsFile o = SafetensorsFile.open(out);
             SafetensorsFile l1 = SafetensorsFile.open(locon); SafetensorsFile l2 = SafetensorsFile.open(te)) {
            assertEquals(ckpt.names(), o.names());
            int merged = 0;
            boolean sawConv = false;
            boolean sawQkv = false;
            for (String key : ckpt.names()) {
                assertEquals(ckpt.info(key).dtype(), o.info(key).dtype(), key);
                assertArrayEquals(ckpt.info(key).shape(), o.info(key).shape(), key);
                float[] exp = ckpt.info(key).dtype().isFloat() ? expected(ckpt, key, List.of(l1, l2), List.of(0.5, 1.0)) : null;
                if (exp == null) {
                    assertArrayEquals(bytes(ckpt, key), bytes(o, key), key + " copied byte for byte");
                    continue;
                }
                merged++;
                sawConv |= ckpt.info(key).rank() == 4 && ckpt.info(key).dim(2) == 3;
                sawQkv |= key.endsWith("attn.in_proj_weight");
                Numerics.assertRelClose(key, ckpt.info(key).shape(), exp, o.readFloats(key), 1e-5);
                assertFalse(java.util.Arrays.equals(bytes(ckpt, key), bytes(o, key)), key + " changed");
            }
            assertTrue(sawConv && sawQkv);
            assertEquals(258 + 36 - 2 * 3, merged, "q/k/v of 3 layers share one in_proj_weight each");
            assertEquals(ckpt.metadata().size() + 1, o.metadata().size());
            assertEquals("[{\"file\":\"locon.safetensors\",\"weight\":0.5},{\"file\":\"te-locon.safetensors\",\"weight\":1.0}]",
                    o.metadata().get(Merge.MERGED_KEY));
        }
    }

    @Test
    void fp16CheckpointStaysFp16(@TempDir Path tmp) throws IOException {
        Path half = tmp.resolve("half.safetensors");
        try (SafetensorsFile ckpt = SafetensorsFile.open(dir().resolve("checkpoint.safetensors"))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String k : ckpt.names()) {
                if (k.startsWith("model.diffusion_model.input_blocks.1.")) {
                    w.addFloats(k, StDType.F16, ckpt.info(k).shape(), ckpt.readFloats(k));
                } else if (k.startsWith("model.diffusion_model.")) {
                    w.copy(ckpt, k);
                }
            }
            w.metadata("modelspec.title", "half");
            w.write(half);
        }
        Path out = tmp.resolve("merged.safetensors");
        Cli.Run r = Cli.run("merge", half.toString(), dir().resolve("locon.safetensors").toString(), "-o", out.toString());
        assertEquals(0, r.exit(), r.toString());
        try (SafetensorsFile in = SafetensorsFile.open(half); SafetensorsFile o = SafetensorsFile.open(out);
             SafetensorsFile l = SafetensorsFile.open(dir().resolve("locon.safetensors"))) {
            String key = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"; // conv 3x3
            assertEquals(StDType.F16, o.info(key).dtype());
            float[] exp = expected(in, key, List.of(l), List.of(1.0));
            for (int i = 0; i < exp.length; i++) {
                exp[i] = Float.float16ToFloat(Float.floatToFloat16(exp[i]));
            }
            Numerics.assertRelClose(key, in.info(key).shape(), exp, o.readFloats(key), 1e-3);
            assertEquals("half", o.metadata().get("modelspec.title"));
        }
    }

    @Test
    void blockVectorLimitsTheMergeToTheChosenBlocks(@TempDir Path tmp) throws IOException {
        Path ckptPath = dir().resolve("checkpoint.safetensors");
        Path out = tmp.resolve("merged.safetensors");
        Cli.Run r = Cli.run("merge", ckptPath.toString(), dir().resolve("locon.safetensors").toString(),
                "--blocks", "SDXL-LyC-OUTALL", "-o", out.toString());
        assertEquals(0, r.exit(), r.toString());
        try (SafetensorsFile ckpt = SafetensorsFile.open(ckptPath); SafetensorsFile o = SafetensorsFile.open(out)) {
            String in = "model.diffusion_model.input_blocks.4.1.proj_in.weight";
            String outKey = "model.diffusion_model.output_blocks.4.1.proj_in.weight";
            assertArrayEquals(bytes(ckpt, in), bytes(o, in), "input blocks weigh 0");
            assertFalse(java.util.Arrays.equals(bytes(ckpt, outKey), bytes(o, outKey)), "output blocks merged");
        }
    }

    /** A LoRA with one module the checkpoint lacks, or one with the wrong input size. */
    private static Path oddLora(Path tmp, String module, int in) throws IOException {
        Path p = tmp.resolve(module + ".safetensors");
        new SafetensorsWriter()
                .addFloats(module + ".lora_down.weight", StDType.F32, new long[] {2, in}, new float[2 * in])
                .addFloats(module + ".lora_up.weight", StDType.F32, new long[] {32, 2}, new float[64])
                .addFloats(module + ".alpha", StDType.F32, new long[0], new float[] {1})
                .write(p);
        return p;
    }

    @Test
    void unmatchedModulesAreNamedOrSkippedOnRequest(@TempDir Path tmp) throws IOException {
        Path ckpt = dir().resolve("checkpoint.safetensors");
        Path lora = oddLora(tmp, "lora_unet_no_such_layer", 8);
        Path out = tmp.resolve("m.safetensors");
        Cli.Run r = Cli.run("merge", ckpt.toString(), lora.toString(), "-o", out.toString());
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("lora_unet_no_such_layer") && r.err().contains("--skip-unmatched"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertFalse(Files.exists(out));
        r = Cli.run("merge", ckpt.toString(), lora.toString(), "-o", out.toString(), "--skip-unmatched");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.err().contains("warning") && r.err().contains("lora_unet_no_such_layer"), r.err());
    }

    @Test
    void shapeMismatchIsAnInputError(@TempDir Path tmp) throws IOException {
        Path lora = oddLora(tmp, "lora_unet_input_blocks_1_0_emb_layers_1", 7);
        Path out = tmp.resolve("m.safetensors");
        Cli.Run r = Cli.run("merge", dir().resolve("checkpoint.safetensors").toString(), lora.toString(), "-o", out.toString());
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("another model"), r.err());
        assertFalse(Files.exists(out));
    }

    @Test
    void weightSuffixSplitsOnlyOnANumber() {
        assertEquals(new MergeConfig.LoraSpec(Path.of("C:\\loras\\x.safetensors"), 0.5),
                MergeConfig.LoraSpec.parse("C:\\loras\\x.safetensors:0.5"));
        assertEquals(new MergeConfig.LoraSpec(Path.of("C:\\loras\\x.safetensors"), 1.0),
                MergeConfig.LoraSpec.parse("C:\\loras\\x.safetensors"));
        assertEquals(new MergeConfig.LoraSpec(Path.of("C:x.safetensors"), 1.0), MergeConfig.LoraSpec.parse("C:x.safetensors"));
        assertEquals(new MergeConfig.LoraSpec(Path.of("a/b.safetensors"), -1.5), MergeConfig.LoraSpec.parse("a/b.safetensors:-1.5"));
        assertEquals(new MergeConfig.LoraSpec(Path.of("a:b.safetensors"), 1.0), MergeConfig.LoraSpec.parse("a:b.safetensors"));
    }

    @Test
    void loraGivenAsCheckpointIsExplained(@TempDir Path tmp) {
        Path lora = dir().resolve("locon.safetensors");
        Cli.Run r = Cli.run("merge", lora.toString(), lora.toString(), "-o", tmp.resolve("m.safetensors").toString());
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("checkpoint comes first"), r.err());
    }

    @Test
    void helpListsExitCodesAndAnExample() {
        Cli.Run r = Cli.run("merge", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("Exit codes:") && r.out().contains("Example:"), r.out());
    }
}
