package tenmin.models.clip;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.MetaParams;
import tenmin.testing.CheckpointCopies;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;
import tenmin.testing.SdxlKeyList;

/**
 * Building the text encoders: the real SDXL configuration's key inventory and LoRA module list without
 * allocating weights (sdxl-keys.json), and loading every fixture checkpoint — which keys are read, fp16 and
 * bf16 files, a file without {@code position_ids}, and the errors for a missing or mis-shaped key.
 */
class TextEncoderCheckpointTest extends CpuBackendTests {

    @TempDir
    static Path tmp;

    private static SdxlTextEncoders meta(MetaParams te1, MetaParams te2) {
        return SdxlTextEncoders.build(te1, te2, ClipTextConfig.SDXL_TE1, ClipTextConfig.SDXL_TE2);
    }

    @Test
    void realSdxlConfigurationListsExactlyTheTe1AndTe2KeysAndShapes() {
        MetaParams te1 = MetaParams.of(ClipKeys.TE1_PREFIX);
        MetaParams te2 = MetaParams.of(ClipKeys.TE2_PREFIX);
        meta(te1, te2);
        Map<String, Shape> expected1 = SdxlKeyList.shapes("te1");
        assertFalse(expected1.containsKey(ClipKeys.TE1_POSITION_IDS), "the inventory lists weights only");
        assertEquals(196, expected1.size());
        assertEquals(expected1, te1.shapes());
        Map<String, Shape> expected2 = SdxlKeyList.shapes("te2");
        assertEquals(390, expected2.size());
        assertEquals(expected2, te2.shapes());
    }

    /** The LoCon network's preset selection on our layers gives LyCORIS' 264 (full) and 88 (MLP-only) modules. */
    @Test
    void realSdxlLayersGiveBothTextEncoderLoconLists() {
        SdxlTextEncoders enc = meta(MetaParams.of(ClipKeys.TE1_PREFIX), MetaParams.of(ClipKeys.TE2_PREFIX));
        LoConRanks ranks = LoConRanks.linear(8, 4.0);   // the recipe's network_dim / network_alpha
        for (LoConPreset.TextEncoderModules which : LoConPreset.TextEncoderModules.values()) {
            List<LoConTarget> targets = new ArrayList<>(LoConPreset.textEncoder(LoConPreset.TE1,
                    enc.te1().adaptableLayers(), which, ranks));
            targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, enc.te2().adaptableLayers(), which, ranks));
            List<String> actual = new ArrayList<>();
            for (LoConTarget t : targets) {
                actual.add(t.name() + " " + t.kind() + " " + t.in() + "->" + t.out() + " r" + t.rank() + " a" + t.alpha());
            }
            String list = which == LoConPreset.TextEncoderModules.FULL ? "locon_te_full" : "locon_te_mlp";
            List<String> expected = new ArrayList<>();
            for (SdxlKeyList.Module m : SdxlKeyList.modules(list)) {
                expected.add(m.name() + " " + m.kind() + " " + m.in() + "->" + m.out() + " r" + m.rank() + " a" + m.alpha());
            }
            assertEquals(expected, actual, list);
        }
    }

    @Test
    void realSdxlTe1LastLayerIsReportedWithoutGradient() {
        SdxlTextEncoders enc = meta(MetaParams.of(ClipKeys.TE1_PREFIX), MetaParams.of(ClipKeys.TE2_PREFIX));
        List<String> names = new ArrayList<>();
        for (AdaptableLayer l : enc.layersWithoutGradient()) {
            names.add(l.path());
        }
        String layer = "text_model.encoder.layers.11.";
        assertEquals(List.of(layer + "self_attn.k_proj", layer + "self_attn.v_proj", layer + "self_attn.q_proj",
                layer + "self_attn.out_proj", layer + "mlp.fc1", layer + "mlp.fc2"), names);
    }

    @Test
    void configFromJsonNamesTheBadField() throws IOException {
        String good = "{\"vocab_size\": 49408, \"hidden_size\": 32, \"intermediate_size\": 64,"
                + " \"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"max_position_embeddings\": 77,"
                + " \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-5}";
        ObjectMapper json = new ObjectMapper();
        assertEquals(new ClipTextConfig(49408, 32, 3, 4, 64, 77, ClipTextConfig.Activation.GELU, 1e-5, 0),
                ClipTextConfig.fromJson(json.readTree(good), "cfg"));
        JsonNode relu = json.readTree(good.replace("\"gelu\"", "\"relu\""));
        InputException e = assertThrows(InputException.class, () -> ClipTextConfig.fromJson(relu, "cfg \"te1\""));
        assertEquals("cfg \"te1\": hidden_act \"relu\" is not supported (expected quick_gelu or gelu)", e.getMessage());
        JsonNode missing = json.readTree(good.replace("\"hidden_size\": 32,", ""));
        e = assertThrows(InputException.class, () -> ClipTextConfig.fromJson(missing, "cfg"));
        assertEquals("cfg: missing field \"hidden_size\"", e.getMessage());
        JsonNode heads = json.readTree(good.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5"));
        e = assertThrows(InputException.class, () -> ClipTextConfig.fromJson(heads, "cfg"));
        assertTrue(e.getMessage().contains("not a multiple of 5 heads"), e.getMessage());
        JsonNode unknown = json.readTree(good.replace("{", "{\"num_layers\": 3, "));
        e = assertThrows(InputException.class, () -> ClipTextConfig.fromJson(unknown, "cfg"));
        assertEquals("cfg: unknown key \"num_layers\"", e.getMessage());
        JsonNode bookkeeping = json.readTree(good.replace("{", "{\"attention_dropout\": 0.0, \"model_type\": \"clip_text_model\", "));
        assertEquals(ClipTextConfig.fromJson(json.readTree(good), "cfg"), ClipTextConfig.fromJson(bookkeeping, "cfg"));
    }

    // ---- every fixture checkpoint ------------------------------------------------------------------

    @TestFactory
    Stream<DynamicNode> everyModelFolder() {
        List<DynamicNode> out = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            String tag = " [" + dir.getFileName() + "]";
            out.add(DynamicContainer.dynamicContainer("text encoder checkpoint" + tag, Stream.of(
                    DynamicTest.dynamicTest("te reads every te1/te2 weight of the checkpoint" + tag, () -> checkKeysRead(dir)),
                    DynamicTest.dynamicTest("te missing key is named" + tag, () -> checkMissingKey(dir)),
                    DynamicTest.dynamicTest("te mis-shaped key is named" + tag, () -> checkMisshapedKey(dir)),
                    DynamicTest.dynamicTest("te loads without position_ids" + tag, () -> checkWithoutPositionIds(dir)),
                    DynamicTest.dynamicTest("te fp16 checkpoint" + tag, () -> checkStoredAs(dir, StDType.F16, 1e-2)),
                    DynamicTest.dynamicTest("te bf16 checkpoint" + tag, () -> checkStoredAs(dir, StDType.BF16, 5e-2)))));
        }
        return out.stream();
    }

    private static ClipTextConfig config(Path dir, String section) {
        return ClipTextConfig.fromConfigFile(dir.resolve("config.json"), section);
    }

    private static SdxlTextEncoders load(Path dir, SafetensorsFile file, Scope scope) {
        return SdxlTextEncoders.load(file, scope, DType.F32, config(dir, "te1"), config(dir, "te2"));
    }

    /** Every key under both prefixes is read, except position_ids (a buffer) and logit_scale (unused). */
    private static void checkKeysRead(Path dir) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             Scope scope = Scope.root(backend, "te")) {
            CheckpointParams p1 = CheckpointParams.of(file, ClipKeys.TE1_PREFIX, scope, DType.F32);
            CheckpointParams p2 = CheckpointParams.of(file, ClipKeys.TE2_PREFIX, scope, DType.F32);
            SdxlTextEncoders.build(p1, p2, config(dir, "te1"), config(dir, "te2"));
            Set<String> expected = new TreeSet<>();
            for (String k : file.names()) {
                if (k.startsWith(ClipKeys.TE1_PREFIX) || k.startsWith(ClipKeys.TE2_PREFIX)) {
                    expected.add(k);
                }
            }
            assertTrue(expected.remove(ClipKeys.TE1_POSITION_IDS), "fixture has position_ids");
            assertTrue(expected.remove(ClipKeys.TE2_PREFIX + "logit_scale"), "fixture has logit_scale");
            Set<String> read = new TreeSet<>(p1.usedKeys());
            read.addAll(p2.usedKeys());
            assertEquals(expected, read);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static void checkMissingKey(Path dir) throws IOException {
        String key = ClipKeys.TE2_PREFIX + "transformer.resblocks.1.attn.in_proj_weight";
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-te-missing.safetensors"), null, Set.of(key), Map.of());
        CheckpointCopies.assertLoadFails(copy, backend, "missing key \"" + key + "\"", (file, scope) -> load(dir, file, scope));
    }

    private static void checkMisshapedKey(Path dir) throws IOException {
        String key = ClipKeys.TE1_PREFIX + "text_model.encoder.layers.0.mlp.fc1.weight";
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-te-shape.safetensors"), null, Set.of(), Map.of(key, new long[] {3, 5}));
        CheckpointCopies.assertLoadFails(copy, backend, "key \"" + key + "\" has shape [3, 5], expected (",
                (file, scope) -> load(dir, file, scope));
    }

    private static void checkWithoutPositionIds(Path dir) throws IOException {
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-te-noids.safetensors"), null, Set.of(ClipKeys.TE1_POSITION_IDS),
                Map.of());
        float[] withIds = context(dir, dir.resolve("checkpoint.safetensors"));
        float[] without = context(dir, copy);
        assertArrayEquals(withIds, without);
    }

    /** A checkpoint stored as fp16/bf16 loads (converted to fp32) and gives the fixture's context within its precision. */
    private static void checkStoredAs(Path dir, StDType type, double rel) throws IOException {
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-te-" + type + ".safetensors"), type, Set.of(), Map.of());
        float[] context = context(dir, copy);
        try (SafetensorsFile io = SafetensorsFile.open(dir.resolve("te-io.safetensors"))) {
            float[] expected = io.readFloats("context");
            Numerics.assertRelClose("context from a " + type + " file", io.info("context").shape(), expected, context, rel);
            // The weights really were rounded: the result is not the fp32 one.
            assertTrue(Numerics.diff(expected, context).maxAbs() > 0, "no rounding visible");
        }
    }

    private static float[] context(Path dir, Path checkpoint) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(checkpoint);
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("te-io.safetensors"));
             Scope scope = Scope.root(backend, "te")) {
            SdxlTextEncoders enc = load(dir, file, scope);
            Tensor ids1 = scope.fromHost(io.readLongs("ids_te1"), shape(io, "ids_te1"));
            Tensor ids2 = scope.fromHost(io.readLongs("ids_te2"), shape(io, "ids_te2"));
            return enc.encode(Functional.inference(scope), ids1, ids2, SdxlTextEncoders.Options.DEFAULT).context().toHost();
        }
    }

    private static int[] shape(SafetensorsFile io, String key) {
        return Shape.of(io.info(key).shape()).dims();
    }
}
