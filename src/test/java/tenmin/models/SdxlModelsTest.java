package tenmin.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.clip.ClipTokenizer;
import tenmin.models.clip.SdxlTextEncoders;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;
import tenmin.testing.SdxlKeyList;

/**
 * The model bundle: loading every fixture checkpoint, the text-conditioning step against te-io (sgm /
 * open_clip outputs) with y checked against the size-embedding formula written out here, the built-in tiny
 * configuration against the fixture's config.json, and planned weight sizes against the real SDXL key list.
 */
class SdxlModelsTest {
    private static CpuBackend backend;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @Test
    void theCpuBackendRefusesAModelWhoseFp32WeightsDoNotFitTheHeap() {
        // the planned fp32 bytes agree with the real key set's shapes (sdxl-keys.json: 3.47 G values)
        long sdxl = SdxlModels.plannedWeightBytes(SdxlConfig.sdxl(), SdxlDtypes.fp32()).values().stream()
                .mapToLong(Long::longValue).sum();
        long fixture = 0;
        for (String section : List.of("unet", "te1", "te2", "vae")) {
            for (Shape shape : SdxlKeyList.shapes(section).values()) {
                fixture += 4 * shape.numel();
            }
        }
        assertEquals(fixture, sdxl, 1e-4 * fixture, "fp32 SDXL weights");
        InputException e = assertThrows(InputException.class,
                () -> SdxlModels.checkHeap(sdxl, 5_500_000_000L, 6_000_000_000L));
        assertTrue(e.getMessage().contains("13.9 GB") && e.getMessage().contains("5.5 GB")
                && e.getMessage().contains("--device cuda") && e.getMessage().contains("-Xmx"), e.getMessage());
        // a suggestion that covers the weights, the margin and what the heap already holds
        int g = Integer.parseInt(e.getMessage().replaceAll(".*-Xmx(\\d+)g.*", "$1"));
        assertTrue(g * (1L << 30) >= sdxl + 500_000_000L, e.getMessage());
        SdxlModels.checkHeap(60_000_000L, 5_500_000_000L, 6_000_000_000L); // the tiny models fit anywhere
    }

    @Test
    void buildingFullSdxlOnTheCpuBackendFailsBeforeAllocatingWhenTheHeapIsTooSmall() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Runtime.getRuntime().maxMemory() < 12_000_000_000L,
                "this test JVM's heap could hold SDXL; the refusal is checked by the unit test above");
        long before = backend.liveBytes();
        try (Scope s = Scope.root(backend, "sdxl")) {
            InputException e = assertThrows(InputException.class,
                    () -> SdxlModels.random(SdxlConfig.sdxl(), s, SdxlDtypes.fp32(), 1));
            assertTrue(e.getMessage().contains("cpu backend"), e.getMessage());
        }
        assertEquals(before, backend.liveBytes());
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /**
     * An fp16 checkpoint on the cpu backend: its weights take 2 bytes a value (what {@code heapBytes} plans,
     * about half the fp32 file's), and the conditioning is bit for bit that of an fp32 checkpoint holding the
     * same (fp16-rounded) values.
     */
    @Test
    void fp16CheckpointWeightsStayInSixteenBitsWithIdenticalResults(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws java.io.IOException {
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            SdxlConfig cfg = SdxlConfig.fromConfigFile(m.file("config.json"));
            Path half = tenmin.testing.CheckpointCopies.copy(m.file("checkpoint.safetensors"),
                    tmp.resolve(m.name() + "-fp16.safetensors"), tenmin.formats.StDType.F16, java.util.Set.of(), Map.of());
            Path widened = tenmin.testing.CheckpointCopies.copy(half, tmp.resolve(m.name() + "-fp32.safetensors"),
                    tenmin.formats.StDType.F32, java.util.Set.of(), Map.of());
            List<String> prompts = List.of("a red circle", "ohwx, a blue square on a white background");
            List<int[]> sizes = List.of(new int[] {1024, 1024, 0, 0, 1024, 1024}, new int[] {768, 1344, 0, 0, 768, 1344});
            long[] bytes = new long[2];
            float[][] context = new float[2][];
            Path[] files = {half, widened};
            for (int i = 0; i < 2; i++) {
                long before = backend.liveBytes();
                try (Scope root = Scope.root(backend, "test");
                     SdxlModels models = SdxlModels.load(files[i], cfg, root, SdxlDtypes.fp32())) {
                    bytes[i] = backend.liveBytes() - before;
                    Functional f = Functional.inference(root.child("step"));
                    context[i] = models.condition(f, prompts, sizes, PooledProjection.SAI, false).context().toHost();
                }
            }
            try (SafetensorsFile f = SafetensorsFile.open(half)) {
                // the weights as planned, plus the few small tables the models compute at load (< 1 %)
                long[] split = SdxlModels.weightBytes(cfg, f, SdxlDtypes.fp32());
                assertTrue(split[1] > 0.99 * (split[0] + split[1]), "fp16 weights are held off the heap");
                long planned = split[0] + split[1];
                assertTrue(bytes[0] >= planned && bytes[0] <= 1.01 * planned,
                        m.name() + ": planned " + planned + " bytes, held " + bytes[0]);
            }
            assertTrue(bytes[0] < 0.51 * bytes[1], m.name() + ": fp16 " + bytes[0] + " bytes, fp32 " + bytes[1]);
            org.junit.jupiter.api.Assertions.assertArrayEquals(context[1], context[0], m.name() + " context");
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        }
    }

    /**
     * {@code --max_token_length 225} (get_hidden_states_sdxl): the context is BOS of window 0, positions 1-75 of
     * each window and the last position of the last window, each window encoded alone as a 77-id prompt, assembled
     * here on the host; the pooled vector is window 0's. A caption under 75 tokens has a window 0 equal to its plain
     * row, so its first 76 positions and pooled vector are the plain conditioning's.
     */
    @Test
    void longCaptionsAreEncodedInWindowsAndJoined() {
        ModelFixture m = ModelFixture.of(Fixtures.modelDirs().get(0));
        SdxlConfig cfg = SdxlConfig.fromConfigFile(m.file("config.json"));
        StringBuilder longCaption = new StringBuilder("ohwx");
        for (int i = 0; i < 60; i++) {
            longCaption.append(", red disc ").append(i);
        }
        List<String> prompts = List.of("a red circle", longCaption.toString());
        List<int[]> sizes = List.of(new int[] {64, 64, 0, 0, 64, 64}, new int[] {64, 64, 0, 0, 64, 64});
        try (Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.load(m.file("checkpoint.safetensors"), cfg, root, SdxlDtypes.fp32())) {
            Functional f = Functional.inference(root.child("step"));
            assertTrue(models.tokenizer().encode(longCaption.toString()).length > 150, "three windows are used");
            SdxlModels.Conditioning c = models.condition(f, prompts, sizes, PooledProjection.SAI, false, 225);
            int width = c.context().shape().dim(2);
            assertEquals(Shape.of(2, 227, width), c.context().shape());
            float[] got = c.context().toHost();
            float[] gotPooled = c.pooled().toHost();
            int p = c.pooled().shape().dim(1);
            for (int b = 0; b < 2; b++) {
                int[] bpe = models.tokenizer().encode(prompts.get(b));
                int[][] te1 = ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE1, 225);
                int[][] te2 = ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, 225);
                float[][] window = new float[3][];
                float[] pooled0 = null;
                for (int w = 0; w < 3; w++) {
                    var enc = models.textEncoders().encode(f, SdxlTextEncoders.ids(f.scope(), List.of(te1[w])),
                            SdxlTextEncoders.ids(f.scope(), List.of(te2[w])),
                            new SdxlTextEncoders.Options(PooledProjection.SAI, false));
                    window[w] = enc.context().toHost();                         // (1, 77, width)
                    if (w == 0) {
                        pooled0 = enc.pooled().toHost();
                    }
                }
                float[] expected = new float[227 * width];
                System.arraycopy(window[0], 0, expected, 0, width);
                for (int w = 0; w < 3; w++) {
                    System.arraycopy(window[w], width, expected, (1 + 75 * w) * width, 75 * width);
                }
                System.arraycopy(window[2], 76 * width, expected, 226 * width, width);
                float[] row = java.util.Arrays.copyOfRange(got, b * 227 * width, (b + 1) * 227 * width);
                // (products over 6 rows or 1 may round differently in the last bit)
                Numerics.assertRelClose("context of prompt " + b, null, expected, row, 1e-6);
                Numerics.assertRelClose("pooled of prompt " + b, null, pooled0,
                        java.util.Arrays.copyOfRange(gotPooled, b * p, (b + 1) * p), 1e-6);
            }
            SdxlModels.Conditioning plain = models.condition(f, prompts.subList(0, 1), sizes.subList(0, 1),
                    PooledProjection.SAI, false);
            Numerics.assertRelClose("a short caption's window 0 is its plain row", null,
                    java.util.Arrays.copyOfRange(plain.context().toHost(), 0, 76 * width),
                    java.util.Arrays.copyOfRange(got, 0, 76 * width), 1e-6);
            Numerics.assertRelClose("its pooled vector", null, plain.pooled().toHost(),
                    java.util.Arrays.copyOfRange(gotPooled, 0, p), 1e-6);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    /** te-io's prompts are config.json "te_prompts"; context, pooled and y follow from the checkpoint. */
    @Test
    void conditionsFixturePromptsLikeTheReference() {
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            SdxlConfig cfg = SdxlConfig.fromConfigFile(m.file("config.json"));
            List<String> prompts = new ArrayList<>();
            m.config().get("te_prompts").forEach(p -> prompts.add(p.asText()));
            List<int[]> sizes = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                sizes.add(new int[] {1024 + i, 768 - 8 * i, 3 * i, 5 * i, 1024, 1024 - 64 * i});
            }
            try (Scope root = Scope.root(backend, "test");
                 SafetensorsFile io = SafetensorsFile.open(m.file("te-io.safetensors"));
                 SdxlModels models = SdxlModels.load(m.file("checkpoint.safetensors"), cfg, root, SdxlDtypes.fp32())) {
                Functional f = Functional.inference(root.child("step"));
                SdxlModels.Conditioning c = models.condition(f, prompts, sizes, PooledProjection.SAI, false);
                Numerics.assertRelClose(m.name() + " context", io.info("context").shape(), io.readFloats("context"),
                        c.context().toHost(), 1e-5);
                float[] pooled = io.readFloats("te2_pooled");
                Numerics.assertRelClose(m.name() + " pooled", io.info("te2_pooled").shape(), pooled, c.pooled().toHost(), 1e-5);
                int p = cfg.te2().projectionDim();
                int width = p + 6 * 256;
                assertEquals(Shape.of(prompts.size(), width), c.y().shape());
                float[] y = c.y().toHost();
                float[] expected = new float[y.length];
                for (int b = 0; b < prompts.size(); b++) {
                    System.arraycopy(pooled, b * p, expected, b * width, p);
                    int[] v = sizes.get(b);
                    for (int j = 0; j < 6; j++) {
                        for (int k = 0; k < 128; k++) {
                            // sgm timestep_embedding in float32: exp(-ln(10000)·k / half), then v·freq
                            float freq = (float) Math.exp((float) -Math.log(10000) * k / 128f);
                            float a = v[j] * freq;
                            expected[b * width + p + 256 * j + k] = (float) Math.cos(a);
                            expected[b * width + p + 256 * j + 128 + k] = (float) Math.sin(a);
                        }
                    }
                }
                Numerics.assertClose(m.name() + " y", new long[] {prompts.size(), width}, expected, y, 1e-5, 1e-5);

                SdxlModels.Conditioning kohya = models.condition(f, prompts, sizes, PooledProjection.KOHYA, false);
                Numerics.assertRelClose(m.name() + " pooled kohya", null, io.readFloats("te2_pooled_kohya"),
                        kohya.pooled().toHost(), 1e-5);
            }
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        }
    }

    @Test
    void tinyConfigIsTheFixtureConfig() {
        Path config = Fixtures.require("models/tiny-a/config.json");
        SdxlConfig fromFile = SdxlConfig.fromConfigFile(config);
        SdxlConfig tiny = SdxlConfig.tiny();
        assertEquals(fromFile.unet(), tiny.unet());
        assertEquals(fromFile.te1(), tiny.te1());
        assertEquals(fromFile.te2(), tiny.te2());
        assertEquals(fromFile.vae(), tiny.vae());
    }

    /**
     * The random model written as a checkpoint (the demo's base.safetensors) loads through the checkpoint path and
     * computes what the random model computes, bit for bit in fp32: conditioning, a U-Net call and a VAE decode. In
     * fp16 it holds half the bytes, and every key of the fixture checkpoint but TE1's position_ids buffer.
     */
    @Test
    void randomModelWrittenAsACheckpointLoadsAsTheSameModel(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        SdxlConfig cfg = SdxlConfig.tiny();
        Path f32 = tmp.resolve("base-f32.safetensors");
        Path f16 = tmp.resolve("base.safetensors");
        try (Scope root = Scope.root(backend, "write")) {
            SdxlModels.writeRandomCheckpoint(cfg, 7, tenmin.formats.StDType.F32, Map.of("k", "v"), f32, root);
            SdxlModels.writeRandomCheckpoint(cfg, 7, tenmin.formats.StDType.F16, Map.of(), f16, root);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
        try (SafetensorsFile a = SafetensorsFile.open(f32); SafetensorsFile b = SafetensorsFile.open(f16);
             SafetensorsFile fixture = SafetensorsFile.open(Fixtures.require("models/tiny-a/checkpoint.safetensors"))) {
            assertEquals("v", a.metadata().get("k"));
            java.util.Set<String> expected = new java.util.TreeSet<>(fixture.names());
            expected.removeIf(k -> k.endsWith("position_ids"));
            assertEquals(expected, new java.util.TreeSet<>(a.names()));
            assertEquals(a.names(), b.names());
            assertTrue(java.nio.file.Files.size(f16) < 0.51 * java.nio.file.Files.size(f32));
        }
        float[][][] outputs = new float[2][][];
        for (int i = 0; i < 2; i++) {
            try (Scope root = Scope.root(backend, "test");
                 SdxlModels models = i == 0 ? SdxlModels.random(cfg, root, SdxlDtypes.fp32(), 7)
                         : SdxlModels.load(f32, cfg, root, SdxlDtypes.fp32())) {
                Scope step = root.child("step");
                Functional f = Functional.inference(step);
                SdxlModels.Conditioning c = models.condition(f, List.of("ohwx shape, red circle"),
                        List.<int[]>of(new int[] {128, 128, 0, 0, 128, 128}), PooledProjection.SAI, false);
                tenmin.engine.api.Tensor x = step.randn(Shape.of(1, 4, 16, 16), DType.F32,
                        new tenmin.engine.api.Generator(3));
                tenmin.engine.api.Tensor eps = models.unet().forward(f, x, step.fromHost(new long[] {500}, 1),
                        c.context(), c.y());
                outputs[i] = new float[][] {c.context().toHost(), c.y().toHost(), eps.toHost(),
                        models.vae().decode(step, x).toHost()};
            }
        }
        for (int k = 0; k < 4; k++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(outputs[0][k], outputs[1][k], "output " + k);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    @Test
    void randomModelsLoadEveryFixtureKeyShape() {
        // The random tiny bundle asks for exactly the tensors of the fixture checkpoint (all but TE1's position_ids buffer).
        Path ckpt = Fixtures.require("models/tiny-a/checkpoint.safetensors");
        long expected = 0;
        try (SafetensorsFile f = SafetensorsFile.open(ckpt)) {
            for (String key : f.names()) {
                if (!key.endsWith("position_ids")) {
                    TensorInfo info = f.info(key);
                    expected += Shape.of(info.shape()).numel() * 4;
                }
            }
        }
        try (Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.random(SdxlConfig.tiny(), root, SdxlDtypes.fp32(), 7)) {
            // logit_scale (one value, CLIP's contrastive temperature) is in the key list but never read
            assertEquals(expected - 4, models.weightBytes());
            Map<String, Long> planned = SdxlModels.plannedWeightBytes(SdxlConfig.tiny(), SdxlDtypes.fp32());
            assertEquals(expected, planned.values().stream().mapToLong(Long::longValue).sum());
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    @Test
    void plannedSdxlSizesFollowTheRealKeyList() {
        SdxlDtypes gpu = SdxlDtypes.of(Device.cuda(0), "bf16");
        assertEquals(new SdxlDtypes(DType.BF16, DType.BF16, DType.F32), gpu);
        assertEquals(SdxlDtypes.fp32(), SdxlDtypes.of(Device.CPU, "bf16"));
        Map<String, Long> planned = SdxlModels.plannedWeightBytes(SdxlConfig.sdxl(), gpu);
        assertEquals(2 * numel("unet"), planned.get("unet"));
        assertEquals(2 * (numel("te1") + numel("te2")), planned.get("text encoders"));
        assertEquals(4 * numel("vae"), planned.get("vae"));
    }

    private static long numel(String section) {
        long n = 0;
        for (Map.Entry<String, Shape> e : SdxlKeyList.shapes(section).entrySet()) {
            if (!e.getKey().endsWith("position_ids")) {
                n += e.getValue().numel();
            }
        }
        return n;
    }

    @Test
    void missingCheckpointKeyNamesFileAndKeyAndFreesEverything(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        Path ckpt = Fixtures.require("models/tiny-a/checkpoint.safetensors");
        Path broken = tenmin.testing.CheckpointCopies.copy(ckpt, dir.resolve("broken.safetensors"), null,
                java.util.Set.of("first_stage_model.decoder.conv_out.weight"), Map.of());
        try (Scope root = Scope.root(backend, "test")) {
            InputException e = assertThrows(InputException.class,
                    () -> SdxlModels.load(broken, SdxlConfig.tiny(), root, SdxlDtypes.fp32()));
            assertTrue(e.getMessage().contains("first_stage_model.decoder.conv_out.weight"), e.getMessage());
            assertTrue(e.getMessage().contains(broken.toString()), e.getMessage());
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
