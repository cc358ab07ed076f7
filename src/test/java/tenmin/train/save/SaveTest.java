package tenmin.train.save;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.train.Rng;
import tenmin.train.data.Buckets;
import tenmin.train.optim.ClybW;
import tenmin.train.optim.OptimizerState;
import tenmin.train.optim.Param;
import tenmin.train.optim.ParamGroup;

class SaveTest {
    @TempDir
    Path dir;

    @Test
    void outputNamesFollowKohya() {
        assertEquals("at-step00000001.safetensors", OutputNames.step(null, 1));
        assertEquals("yifftoolkit-schnell-step00000080.safetensors", OutputNames.step("yifftoolkit-schnell", 80));
        assertEquals("last.safetensors", OutputNames.last(null));
        assertEquals("x.safetensors", OutputNames.last("x"));
        assertEquals("epoch-000003.safetensors", OutputNames.epoch(null, 3));
        assertEquals("x-step00000002.tenmin-state", OutputNames.stateFor("x-step00000002.safetensors"));
    }

    @Test
    void pythonRenderings() {
        assertEquals("0.0003", PyStr.str(3e-4));
        assertEquals("0.0001", PyStr.str(1e-4));
        assertEquals("4.0", PyStr.str(4.0));
        assertEquals("1e-07", PyStr.str(1e-7));
        assertEquals("None", PyStr.str(null));
        assertEquals("True", PyStr.str(true));
        assertEquals("12", PyStr.str(12L));
        assertEquals("(0.9, 0.99)", PyStr.str(List.of(0.9, 0.99)));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("10_cat", Map.of("n_repeats", 10));
        m.put("caf\u00e9 \"q\"", List.of(1, 2.5, true));
        assertEquals("{\"10_cat\": {\"n_repeats\": 10}, \"caf\\u00e9 \\\"q\\\"\": [1, 2.5, true]}", PyStr.json(m));
    }

    @Test
    void bucketInfoNumbersOnlyTheUsedBucketsInSizeOrder() {
        // trainer-spec §9.3: "idx over used buckets sorted by (w,h)" (kohya's BucketManager keeps only the buckets
        // images went to, sorted): two used buckets are "0" and "1", not their places in the 81-bucket list
        List<Buckets.Reso> all = Buckets.makeResolutions(1024, 1024, 256, 2048, 32);
        Map<Buckets.Reso, Integer> counts = Map.of(new Buckets.Reso(1024, 1024), 20, new Buckets.Reso(256, 2048), 3,
                new Buckets.Reso(832, 1216), 0);
        assertEquals("{\"buckets\": {\"0\": {\"resolution\": [256, 2048], \"count\": 3}, \"1\": {\"resolution\": [1024,"
                + " 1024], \"count\": 20}}, \"mean_img_ar_error\": 0.0125}", TrainingMetadata.bucketInfo(all, counts, 0.0125));
    }

    @Test
    void modelHashesStreamTheFile() throws Exception {
        byte[] bytes = new byte[0x118000];
        new java.util.Random(3).nextBytes(bytes);
        Path f = Files.write(dir.resolve("model.safetensors"), bytes);
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        assertEquals(HexFormat.of().formatHex(d.digest(bytes)), ModelHashes.fileSha256(f));
        String legacy = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(Arrays.copyOfRange(bytes, 0x100000, 0x110000))).substring(0, 8);
        assertEquals(legacy, ModelHashes.legacyModelHash(f));
        Path small = Files.write(dir.resolve("small"), new byte[10]);
        assertEquals("e3b0c442", ModelHashes.legacyModelHash(small)); // sha256 of nothing
    }

    @Test
    void loraFileHasMetadataAndSshsHashOverStoredBytes() throws Exception {
        List<StateTensor> sd = List.of(
                new StateTensor("lora_te1_x.alpha", new long[] {}, new float[] {4f}),
                new StateTensor("lora_te1_x.lora_up.weight", new long[] {2, 1}, new float[] {0.5f, -1.25f}),
                new StateTensor("lora_te1_x.lora_down.weight", new long[] {1, 3}, new float[] {1f / 3, 2f, 1e-5f}));
        Path f = dir.resolve(OutputNames.last("t"));
        Map<String, String> meta = LoraFileWriter.write(f, sd, StDType.F16, Map.of("ss_steps", "80"));
        // independent: fp16 bytes of each tensor in state-dict order (JDK's Float.floatToFloat16)
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        for (StateTensor t : sd) {
            ByteBuffer b = ByteBuffer.allocate(2 * t.values().length).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : t.values()) {
                b.putShort(Float.floatToFloat16(v));
            }
            d.update(b.array());
        }
        String expected = "0x" + HexFormat.of().formatHex(d.digest());
        assertEquals(expected, meta.get("sshs_model_hash"));
        try (SafetensorsFile r = SafetensorsFile.open(f)) {
            assertEquals(expected, r.metadata().get("sshs_model_hash"));
            assertEquals("80", r.metadata().get("ss_steps"));
            assertEquals(StDType.F16, r.info("lora_te1_x.alpha").dtype());
            assertEquals(0, r.info("lora_te1_x.alpha").shape().length);
            assertArrayEquals(new float[] {0.5f, -1.25f}, r.readFloats("lora_te1_x.lora_up.weight"));
        }
        Path none = dir.resolve("none.safetensors");
        LoraFileWriter.write(none, sd, StDType.F32, null);
        try (SafetensorsFile r = SafetensorsFile.open(none)) {
            assertFalse(r.hasMetadata());
        }
    }

    private static TrainingState sampleState() {
        Param p = new Param("lora_unet_a.lora_down.weight", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        p.accumulateGrad(new float[] {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f});
        ClybW opt = new ClybW(ClybW.Hyper.CLYBW);
        opt.step(List.of(new ParamGroup("unet", 1e-3, List.of(p))), new double[] {1e-3});
        Rng rng = new Rng(5);
        rng.nextGaussian();
        Map<String, long[]> rngs = new LinkedHashMap<>();
        rngs.put("noise", rng.state());
        return new TrainingState(12, 1, 3, 42, "abcdef0123456789", rngs, Map.of("tenmin", "dev"),
                List.of(new StateTensor(p.name(), p.shape(), p.value().clone()),
                        new StateTensor("lora_unet_a.alpha", new long[] {}, new float[] {4f})),
                opt.exportState(), new float[] {0.25f, 0.125f}, 0.375);
    }

    @Test
    void stateFileRoundTripsExactly() throws IOException {
        TrainingState s = sampleState();
        Path f = dir.resolve("run.tenmin-state");
        TrainingStateFile.write(f, s);
        assertTrue(TrainingStateFile.looksLikeState(f));
        byte[] head = Arrays.copyOf(Files.readAllBytes(f), 12);
        assertArrayEquals(new byte[] {'T', 'M', 'S', 'T', 'A', 'T', 'E', 0, 1, 0, 0, 0}, head);
        TrainingState r = TrainingStateFile.read(f);
        assertEquals(12, r.globalStep());
        assertEquals(1, r.epoch());
        assertEquals(3, r.batchInEpoch());
        assertEquals(42, r.seed());
        assertEquals("abcdef0123456789", r.configDigest());
        assertArrayEquals(s.rng().get("noise"), r.rng().get("noise"));
        assertEquals("dev", r.info().get("tenmin"));
        assertEquals(2, r.lora().size());
        assertArrayEquals(s.lora().get(0).values(), r.lora().get(0).values());
        assertArrayEquals(new long[] {2, 3}, r.lora().get(0).shape());
        assertArrayEquals(new long[] {}, r.lora().get(1).shape());
        OptimizerState o = r.optimizer();
        assertEquals("ClybW", o.type());
        assertEquals(s.optimizer().steps(), o.steps());
        for (String k : s.optimizer().tensors().keySet()) {
            assertArrayEquals(s.optimizer().tensors().get(k), o.tensors().get(k), k);
        }
        assertArrayEquals(new float[] {0.25f, 0.125f}, r.lossRecord());
        assertEquals(0.375, r.lossTotal());
    }

    @Test
    void damagedStateFilesAreInputErrors() throws IOException {
        Path f = dir.resolve("s.tenmin-state");
        TrainingStateFile.write(f, sampleState());
        byte[] good = Files.readAllBytes(f);

        Path truncated = Files.write(dir.resolve("t"), Arrays.copyOf(good, good.length - 4));
        assertTrue(assertThrows(InputException.class, () -> TrainingStateFile.read(truncated)).getMessage().contains("truncated"));

        byte[] v2 = good.clone();
        v2[8] = 2;
        Path newer = Files.write(dir.resolve("v"), v2);
        assertTrue(assertThrows(InputException.class, () -> TrainingStateFile.read(newer)).getMessage().contains("version 2"));

        Path lora = Files.write(dir.resolve("l.safetensors"), new byte[64]);
        assertThrows(InputException.class, () -> TrainingStateFile.read(lora));
        assertFalse(TrainingStateFile.looksLikeState(lora));
        assertThrows(InputException.class, () -> TrainingStateFile.read(dir.resolve("missing")));
    }

    @Test
    void configDigestChangesWithTheRecipe() {
        Map<String, Object> a = new LinkedHashMap<>(Map.of("learning_rate", 3e-4, "seed", 1L));
        Map<String, Object> b = new LinkedHashMap<>(Map.of("seed", 1L, "learning_rate", 3e-4));
        assertEquals(TrainingStateFile.configDigest(a), TrainingStateFile.configDigest(b));
        b.put("learning_rate", 1e-4);
        assertFalse(TrainingStateFile.configDigest(a).equals(TrainingStateFile.configDigest(b)));
    }
}
