package tenmin.models.vae;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.MetaParams;
import tenmin.testing.CheckpointCopies;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;
import tenmin.testing.SdxlKeyList;

/**
 * Building the VAE: the real SDXL key inventory without allocating weights, the config reader, and
 * loading every fixture checkpoint (keys read, an fp16 file, missing and mis-shaped keys).
 */
class VaeCheckpointTest extends CpuBackendTests {

    @TempDir
    static Path tmp;

    @Test
    void realSdxlConfigurationListsExactlyTheVaeKeysAndShapes() {
        MetaParams p = MetaParams.of(VaeKeys.PREFIX);
        new Vae(p, VaeConfig.SDXL);
        Map<String, Shape> expected = SdxlKeyList.shapes("vae");
        assertEquals(248, expected.size());
        assertEquals(expected, p.shapes());
    }

    @Test
    void sdxlConstantsAreTheReferenceValues() {
        assertEquals(0.13025, Vae.SCALE_FACTOR);
        assertEquals(8, VaeConfig.SDXL.downsampleFactor());
        assertEquals(1e-6, VaeConfig.GROUP_NORM_EPS);
    }

    @Test
    void configFromJsonReadsTheFixtureFieldsAndNamesBadOnes() throws IOException {
        ObjectMapper json = new ObjectMapper();
        String good = "{\"ch\": 128, \"ch_mult\": [1, 2, 4, 4], \"num_res_blocks\": 2, \"z_channels\": 4,"
                + " \"embed_dim\": 4, \"double_z\": true, \"attn_resolutions\": [], \"in_channels\": 3,"
                + " \"out_ch\": 3, \"resolution\": 256, \"dropout\": 0.0}";
        assertEquals(VaeConfig.SDXL, VaeConfig.fromJson(json.readTree(good), "cfg"));
        JsonNode badMult = json.readTree(good.replace("[1, 2, 4, 4]", "[1, 2, \"x\"]"));
        InputException e = assertThrows(InputException.class, () -> VaeConfig.fromJson(badMult, "cfg \"vae\""));
        assertEquals("cfg \"vae\": field \"ch_mult[2]\" must be an integer, found \"x\"", e.getMessage());
        JsonNode groups = json.readTree(good.replace("\"ch\": 128", "\"ch\": 48"));
        e = assertThrows(InputException.class, () -> VaeConfig.fromJson(groups, "cfg"));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        JsonNode unknown = json.readTree(good.replace("{", "{\"attn_type\": \"vanilla\", "));
        e = assertThrows(InputException.class, () -> VaeConfig.fromJson(unknown, "cfg"));
        assertEquals("cfg: unknown key \"attn_type\"", e.getMessage());
    }

    @Test
    void configFileErrorsNameTheFile() throws IOException {
        Path file = tmp.resolve("no-vae.json");
        java.nio.file.Files.writeString(file, "{\"unet\": {}}");
        InputException e = assertThrows(InputException.class, () -> VaeConfig.fromConfigFile(file));
        assertEquals(file + ": no \"vae\" object", e.getMessage());
    }

    @TestFactory
    Stream<DynamicNode> everyModelFolder() {
        List<DynamicNode> out = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            String tag = " [" + dir.getFileName() + "]";
            out.add(DynamicContainer.dynamicContainer("vae checkpoint" + tag, Stream.of(
                    DynamicTest.dynamicTest("vae reads every VAE weight of the checkpoint" + tag, () -> checkKeysRead(dir)),
                    DynamicTest.dynamicTest("vae missing key is named" + tag, () -> checkMissingKey(dir)),
                    DynamicTest.dynamicTest("vae mis-shaped key is named" + tag, () -> checkMisshapedKey(dir)),
                    DynamicTest.dynamicTest("vae fp16 checkpoint decodes within fp16 precision" + tag,
                            () -> checkFp16(dir)))));
        }
        return out.stream();
    }

    private static VaeConfig config(Path dir) {
        return VaeConfig.fromConfigFile(dir.resolve("config.json"));
    }

    private static void checkKeysRead(Path dir) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             Scope scope = Scope.root(backend, "vae")) {
            CheckpointParams p = CheckpointParams.of(file, VaeKeys.PREFIX, scope, DType.F32);
            new Vae(p, config(dir));
            Set<String> expected = new TreeSet<>();
            for (String k : file.names()) {
                if (k.startsWith(VaeKeys.PREFIX)) {
                    expected.add(k);
                }
            }
            assertEquals(expected, new TreeSet<>(p.usedKeys()));
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static void checkMissingKey(Path dir) throws IOException {
        String key = VaeKeys.PREFIX + "decoder.mid.attn_1.proj_out.bias";
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-vae-missing.safetensors"), null, Set.of(key), Map.of());
        VaeConfig config = config(dir);
        CheckpointCopies.assertLoadFails(copy, backend, "missing key \"" + key + "\"",
                (file, scope) -> Vae.load(file, scope, config));
    }

    private static void checkMisshapedKey(Path dir) throws IOException {
        String key = VaeKeys.PREFIX + "quant_conv.weight";
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-vae-shape.safetensors"), null, Set.of(),
                Map.of(key, new long[] {8, 8}));
        VaeConfig config = config(dir);
        CheckpointCopies.assertLoadFails(copy, backend, "key \"" + key + "\" has shape [8, 8], expected (",
                (file, scope) -> Vae.load(file, scope, config));
    }

    private static void checkFp16(Path dir) throws IOException {
        Path copy = CheckpointCopies.copy(dir.resolve("checkpoint.safetensors"),
                tmp.resolve(dir.getFileName() + "-vae-f16.safetensors"), StDType.F16, Set.of(), Map.of());
        try (SafetensorsFile file = SafetensorsFile.open(copy);
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
             Scope scope = Scope.root(backend, "vae")) {
            Vae vae = Vae.load(file, scope, config(dir));
            float[] decoded = vae.decode(scope, scope.fromHost(io.readFloats("latent"),
                    Shape.of(io.info("latent").shape()), DType.F32)).toHost();
            float[] expected = io.readFloats("decoded");
            Numerics.assertRelClose("decoded from an fp16 file", io.info("decoded").shape(), expected, decoded, 1e-2);
            assertTrue(Numerics.diff(expected, decoded).maxAbs() > 0, "no rounding visible");
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
