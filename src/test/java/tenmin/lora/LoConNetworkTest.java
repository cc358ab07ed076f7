package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.models.sdxl.Unet;
import tenmin.models.sdxl.UnetConfig;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;

/** LoCon networks: initialisation, the file format (against LyCORIS' file), strict loading, attaching. */
class LoConNetworkTest extends CpuBackendTests {
    private Scope root;

    @BeforeEach
    void open() {
        root = Scope.root(backend, "test");
    }

    @AfterEach
    void close() {
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static ModelFixture first() {
        return ModelFixture.of(Fixtures.modelDirs().getFirst());
    }

    private static List<LoConTarget> targets(Unet unet, ModelFixture m) {
        return LoConPreset.unet(unet.layers(), unet.moduleClasses(), LoConUnetFixtureTest.ranks(m));
    }

    @Test
    void createsKaimingUniformDownAndZeroUpFromTheSeed() {
        ModelFixture m = first();
        Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
        List<LoConTarget> targets = targets(unet, m);
        LoConNetwork a = LoConNetwork.create(targets, root, new Generator(7));
        double sum = 0;
        double sumSq = 0;
        long n = 0;
        for (LoConModule mod : a.modules()) {
            double bound = 1 / Math.sqrt(mod.down().numel() / (double) mod.rank());
            for (float v : mod.down().toHost()) {
                assertTrue(Math.abs(v) <= bound, mod.name() + " down value " + v + " outside ±" + bound);
                sum += v / bound;
                sumSq += (v / bound) * (v / bound);
                n++;
            }
            for (float v : mod.up().toHost()) {
                assertEquals(0f, v, mod.name() + " up must start at zero");
            }
            assertTrue(mod.down().requiresGrad() && mod.up().requiresGrad());
        }
        // U(-1, 1) after scaling: mean 0, second moment 1/3.
        assertEquals(0, sum / n, 0.02);
        assertEquals(1.0 / 3, sumSq / n, 0.02);
        a.detach();

        LoConNetwork same = LoConNetwork.create(targets, root, new Generator(7));
        LoConNetwork other = LoConNetwork.create(targets(Unet.meta(UnetConfig.fromConfigFile(m.file("config.json"))), m),
                root, new Generator(8));
        assertArrayEquals(a.modules().getFirst().down().toHost(), same.modules().getFirst().down().toHost());
        assertFalse(java.util.Arrays.equals(a.modules().getFirst().down().toHost(),
                other.modules().getFirst().down().toHost()));
        assertEquals(targets.stream().mapToLong(LoConTarget::parameterCount).sum(), a.parameterCount());
    }

    @Test
    void aFreshNetworkIsTheIdentityAndDetachRemovesIt() {
        ModelFixture m = first();
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        try (SafetensorsFile ckpt = SafetensorsFile.open(m.file("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(m.file("unet-io.safetensors"))) {
            Unet unet = Unet.fromCheckpoint(ckpt, config, root, DType.F32);
            String c = "wide";
            float[] base = eps(unet, io, c);
            LoConNetwork net = LoConNetwork.create(targets(unet, m), root, new Generator(1));
            assertArrayEquals(base, eps(unet, io, c), "zero up: the network starts as the identity");
            net.detach();
            LoConNetwork fixture = LoConNetwork.load(m.file("locon.safetensors"), targets(unet, m), root);
            float[] withLora = eps(unet, io, c);
            assertFalse(java.util.Arrays.equals(base, withLora));
            fixture.setMultiplier(0);
            assertArrayEquals(base, eps(unet, io, c), "multiplier 0");
            fixture.setMultiplier(1);
            fixture.detach();
            assertArrayEquals(base, eps(unet, io, c), "detached");
            net.attach();
            assertThrows(IllegalStateException.class, fixture::attach, "two networks on one layer");
        }
    }

    private float[] eps(Unet unet, SafetensorsFile io, String c) {
        try (Scope step = root.child("step")) {
            Functional f = Functional.inference(step);
            return unet.forward(f, ModelFixture.tensor(io, c + ".x", step), ModelFixture.tensor(io, c + ".timesteps", step),
                    ModelFixture.tensor(io, c + ".context", step), ModelFixture.tensor(io, c + ".y", step)).toHost();
        }
    }

    @TestFactory
    List<DynamicTest> fileFormat() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            tests.add(dynamicTest("locon save is laid out as LyCORIS' file [" + m.name() + "]", () -> sameLayout(m)));
            for (StDType dtype : List.of(StDType.F32, StDType.F16, StDType.BF16)) {
                tests.add(dynamicTest("locon save and load " + dtype + " [" + m.name() + "]", () -> roundTrip(m, dtype)));
            }
        }
        return tests;
    }

    /** Loading the reference file and saving it as F32 reproduces its tensor table and bytes. */
    private void sameLayout(ModelFixture m) throws IOException {
        Path tmp = Files.createTempDirectory("locon");
        Path out = tmp.resolve("saved.safetensors");
        try (Scope s = root.child("layout"); SafetensorsFile ref = SafetensorsFile.open(m.file("locon.safetensors"))) {
            Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
            LoConNetwork net = LoConNetwork.load(ref, targets(unet, m), s);
            net.save(out, StDType.F32, ref.metadata());
            try (SafetensorsFile saved = SafetensorsFile.open(out)) {
                assertEquals(ref.metadata(), saved.metadata());
                List<TensorInfo> a = ref.tensorsInFileOrder();
                List<TensorInfo> b = saved.tensorsInFileOrder();
                assertEquals(a.size(), b.size());
                for (int i = 0; i < a.size(); i++) {
                    assertEquals(describe(a.get(i)), describe(b.get(i)));
                    assertArrayEquals(ref.segment(a.get(i).name()).toArray(ValueLayout.JAVA_BYTE),
                            saved.segment(b.get(i).name()).toArray(ValueLayout.JAVA_BYTE), a.get(i).name());
                }
                assertEquals(ref.fileSegment().byteSize() - ref.dataStart(), saved.fileSegment().byteSize() - saved.dataStart());
            }
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(tmp);
        }
    }

    private static String describe(TensorInfo t) {
        return t.name() + " " + t.dtype() + " " + t.shapeTuple() + " [" + t.begin() + ", " + t.end() + ")";
    }

    private void roundTrip(ModelFixture m, StDType dtype) throws IOException {
        Path tmp = Files.createTempDirectory("locon");
        Path out = tmp.resolve("net.safetensors");
        try (Scope s = root.child("round trip")) {
            Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
            List<LoConTarget> targets = targets(unet, m);
            LoConNetwork net = LoConNetwork.create(targets, s, new Generator(3));
            for (LoConModule mod : net.modules()) {   // non-zero up so both tensors are checked
                s.backend().copyInto(mod.up(), s.randn(mod.up().shape(), DType.F32, new Generator(mod.name().length())));
            }
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("ss_network_module", "lycoris.kohya");
            meta.put("ss_network_dim", Integer.toString(targets.getFirst().rank()));
            net.save(out, dtype, meta);
            net.detach();
            try (SafetensorsFile f = SafetensorsFile.open(out)) {
                assertEquals(meta, f.metadata());
                assertEquals(3 * targets.size(), f.size());
                for (TensorInfo info : f.tensorsInFileOrder()) {
                    assertEquals(dtype, info.dtype(), info.name());
                }
                for (LoConTarget t : targets) {
                    assertEquals(0, f.info(t.name() + ".alpha").shape().length, t.name() + ".alpha is 0-d");
                    assertEquals(t.alpha(), f.readScalar(t.name() + ".alpha"), 1e-6);
                }
                assertEquals(new java.util.TreeSet<>(net.stateDictKeys()), new java.util.TreeSet<>(f.names()));
                for (String key : net.stateDictKeys()) {
                    assertArrayEquals(f.info(key).shape(), net.shape(key), key);
                    assertArrayEquals(rounded(net.toHost(key), dtype), f.readFloats(key), key);
                }
            }
            LoConNetwork back = LoConNetwork.load(out, targets, s);
            for (int i = 0; i < net.modules().size(); i++) {
                LoConModule a = net.modules().get(i);
                LoConModule b = back.modules().get(i);
                assertEquals(a.name(), b.name());
                assertArrayEquals(rounded(a.down().toHost(), dtype), b.down().toHost(), a.name());
                assertArrayEquals(rounded(a.up().toHost(), dtype), b.up().toHost(), a.name());
                assertEquals(a.alpha(), b.alpha());
            }
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(tmp);
        }
    }

    private static float[] rounded(float[] v, StDType dtype) {
        float[] out = v.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] = Half.roundTo(v[i], dtype);
        }
        return out;
    }

    @Test
    void loadIsStrictAndNamesTheOffendingModules(@TempDir Path tmp) throws IOException {
        ModelFixture m = first();
        Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
        List<LoConTarget> targets = targets(unet, m);
        String dropped = targets.get(5).name();
        String reshaped = targets.get(7).name() + ".lora_up.weight";
        try (SafetensorsFile ref = SafetensorsFile.open(m.file("locon.safetensors"))) {
            Path missing = write(tmp.resolve("missing.safetensors"), ref, k -> !k.startsWith(dropped + "."), null);
            Path unknown = write(tmp.resolve("unknown.safetensors"), ref, k -> true, "lora_unet_out_2");
            Path extra = write(tmp.resolve("extra.safetensors"), ref, k -> true, targets.get(2).name() + ".dora_scale");
            Path shape = tmp.resolve("shape.safetensors");
            SafetensorsWriter w = new SafetensorsWriter();
            for (String k : ref.names()) {
                if (k.equals(reshaped)) {
                    long[] d = ref.info(k).shape();
                    d[1] += 1;
                    w.addFloats(k, StDType.F32, d, new float[(int) java.util.Arrays.stream(d).reduce(1, (x, y) -> x * y)]);
                } else {
                    w.copy(ref, k);
                }
            }
            w.write(shape);

            assertLoadError(missing, targets, "missing", dropped);
            assertLoadError(unknown, targets, "does not have", "lora_unet_out_2");
            assertLoadError(extra, targets, "unsupported", targets.get(2).name() + ".dora_scale");
            assertLoadError(shape, targets, "has shape", reshaped);
        }
    }

    /** A copy of {@code ref} keeping keys that pass {@code keep}, plus a small extra tensor when named. */
    private static Path write(Path out, SafetensorsFile ref, java.util.function.Predicate<String> keep, String extraKey)
            throws IOException {
        SafetensorsWriter w = new SafetensorsWriter();
        for (String k : ref.names()) {
            if (keep.test(k)) {
                w.copy(ref, k);
            }
        }
        if (extraKey != null) {
            w.addFloats(extraKey.contains(".") ? extraKey : extraKey + ".alpha", StDType.F32, new long[0], new float[] {1});
        }
        w.write(out);
        return out;
    }

    private void assertLoadError(Path file, List<LoConTarget> targets, String what, String name) {
        try (Scope s = root.child("load")) {
            InputException e = assertThrows(InputException.class, () -> LoConNetwork.load(file, targets, s));
            String msg = e.getMessage();
            assertTrue(msg.contains(file.toString()) && msg.contains(what) && msg.contains(name), msg);
            assertFalse(msg.contains("\n"), "one line: " + msg);
            assertEquals(0, s.liveTensors(), "nothing allocated by a failed load");
        }
        for (LoConTarget t : targets) {
            assertEquals(null, t.layer().adapter(), "a failed load attaches nothing");
        }
    }

    @Test
    void loadMatchingTakesRanksAndModulesFromTheFile(@TempDir Path tmp) throws IOException {
        ModelFixture m = first();
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        Unet unet = Unet.meta(config);
        // Another trainer's file: attention modules only, other ranks and alphas.
        List<LoConTarget> attention = LoConPreset.unet(unet.layers(), unet.moduleClasses(), new LoConRanks(2, 1, 3, 1.5))
                .stream().filter(t -> t.name().contains("_attn")).toList();
        Path file = tmp.resolve("attention.safetensors");
        LoConNetwork written = LoConNetwork.create(attention, root, new Generator(5));
        written.save(file, StDType.F16, Map.of());
        written.detach();

        LoConNetwork loaded = LoConNetwork.loadMatching(file, targets(unet, m), root);
        assertEquals(attention.size(), loaded.modules().size());
        for (int i = 0; i < attention.size(); i++) {
            LoConModule a = written.modules().get(i);
            LoConModule b = loaded.modules().get(i);
            assertEquals(a.name(), b.name());
            assertEquals(2, b.rank());
            assertEquals(1.0, b.alpha());
            assertArrayEquals(rounded(a.down().toHost(), StDType.F16), b.down().toHost());
        }
        loaded.detach();
        InputException e = assertThrows(InputException.class, () -> LoConNetwork.loadMatching(file,
                targets(unet, m).stream().filter(t -> !t.name().contains("attn1")).toList(), root));
        assertTrue(e.getMessage().contains("attn1"), e.getMessage());
    }

    @Test
    void textEncoderNamesUseTheirPrefix() {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("te.text_model.encoder.layers.0.self_attn.k_proj.weight", new int[] {8, 8});
        shapes.put("te.text_model.encoder.layers.0.self_attn.v_proj.weight", new int[] {8, 8});
        shapes.put("te.text_model.encoder.layers.0.self_attn.q_proj.weight", new int[] {8, 8});
        shapes.put("te.text_model.encoder.layers.0.self_attn.out_proj.weight", new int[] {8, 8});
        shapes.put("te.text_model.encoder.layers.0.mlp.fc1.weight", new int[] {16, 8});
        shapes.put("te.text_model.encoder.layers.0.mlp.fc2.weight", new int[] {8, 16});
        var layers = LoConModuleListTest.te1Layers(shapes, "te.");
        List<LoConTarget> mlp = LoConPreset.textEncoder(LoConPreset.TE2, layers, LoConPreset.TextEncoderModules.MLP_ONLY,
                LoConRanks.linear(4, 1));
        assertEquals(List.of("lora_te2_text_model_encoder_layers_0_mlp_fc1", "lora_te2_text_model_encoder_layers_0_mlp_fc2"),
                mlp.stream().map(LoConTarget::name).toList());
        assertEquals("(4, 8)", mlp.getFirst().downShape().toString());
        assertEquals("(16, 4)", mlp.getFirst().upShape().toString());
        assertNotEquals(0, LoConPreset.textEncoder(LoConPreset.TE1, layers, LoConPreset.TextEncoderModules.FULL,
                LoConRanks.linear(4, 1)).size());
    }
}
