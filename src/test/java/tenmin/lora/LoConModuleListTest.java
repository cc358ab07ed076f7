package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;
import tenmin.lora.LoConPreset.TextEncoderModules;
import tenmin.models.SdxlConfig;
import tenmin.models.clip.ClipKeys;
import tenmin.models.clip.ClipTextConfig;
import tenmin.models.clip.ClipTextEncoder;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.Linear;
import tenmin.models.nn.MetaParams;
import tenmin.models.sdxl.Unet;
import tenmin.models.sdxl.UnetConfig;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;

/**
 * Which modules preset {@code full} wraps, with names and geometry, against LyCORIS' own lists:
 * {@code lora-modules.json} of each fixtures model folder (the tiny U-Net and text encoders) and
 * {@code sdxl-keys.json} (the real SDXL U-Net's 788 modules, the text encoders' 264 and 88), all built
 * on meta weights (the models' own classes on {@link MetaParams}): nothing is allocated.
 */
class LoConModuleListTest {
    static JsonNode json(Path p) {
        try {
            return new ObjectMapper().readTree(Files.readString(p));
        } catch (IOException e) {
            throw new AssertionError("cannot read " + p, e);
        }
    }

    /** Asserts target i equals entry i of a LyCORIS module list (name, kind, kernel, stride, padding, in, out, rank, alpha). */
    static void assertModules(String what, JsonNode expected, List<LoConTarget> actual) {
        List<String> exp = new ArrayList<>();
        for (JsonNode e : expected) {
            exp.add(e.get("lora_name").asText() + " " + e.get("kind").asText() + " k" + e.get("kernel").intValue()
                    + " s" + e.get("stride").intValue() + " p" + e.get("padding").intValue() + " " + e.get("in").intValue()
                    + "->" + e.get("out").intValue() + " r" + e.get("rank").intValue() + " a" + e.get("alpha").doubleValue());
        }
        List<String> got = new ArrayList<>();
        for (LoConTarget t : actual) {
            got.add(t.name() + " " + t.kind() + " k" + t.kernel() + " s" + t.stride() + " p" + t.padding() + " " + t.in()
                    + "->" + t.out() + " r" + t.rank() + " a" + t.alpha());
        }
        assertEquals(String.join("\n", exp), String.join("\n", got), what);
    }

    @TestFactory
    List<DynamicTest> fixtureModuleLists() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            JsonNode modules = moduleLists(m);
            tests.add(dynamicTest("locon unet modules [" + m.name() + "]", () -> {
                assumeTrue(modules != null, "no lora-modules.json describes " + m.name());
                Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
                assertModules(m.name() + " unet", modules.get("unet"),
                        LoConPreset.unet(unet.layers(), unet.moduleClasses(), LoConUnetFixtureTest.ranks(m)));
            }));
            tests.add(dynamicTest("locon unet modules match the fixture file [" + m.name() + "]", () -> {
                Unet unet = Unet.meta(UnetConfig.fromConfigFile(m.file("config.json")));
                List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), LoConUnetFixtureTest.ranks(m));
                try (SafetensorsFile f = SafetensorsFile.open(m.file("locon.safetensors"))) {
                    assertEquals(3 * targets.size(), f.size(), "tensors in locon.safetensors");
                    for (LoConTarget t : targets) {
                        assertEquals(t.downShape().toString(), shape(f.info(t.name() + ".lora_down.weight")), t.name());
                        assertEquals(t.upShape().toString(), shape(f.info(t.name() + ".lora_up.weight")), t.name());
                        assertEquals("()", shape(f.info(t.name() + ".alpha")), t.name());
                        assertEquals(t.alpha(), f.readScalar(t.name() + ".alpha"), t.name());
                    }
                }
            }));
            tests.add(dynamicTest("locon text encoder modules [" + m.name() + "]", () -> {
                assumeTrue(modules != null, "no lora-modules.json describes " + m.name());
                JsonNode te = m.config();
                JsonNode r = te.get("te_lora");
                LoConRanks ranks = LoConRanks.linear(r.get("linear_rank").intValue(), r.get("linear_alpha").doubleValue());
                SdxlConfig config = SdxlConfig.fromConfigFile(m.file("config.json"));
                List<LoConTarget> targets = new ArrayList<>();
                targets.addAll(LoConPreset.textEncoder(LoConPreset.TE1, te1Layers(config.te1()), TextEncoderModules.FULL,
                        ranks));
                targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, te2Layers(config.te2()), TextEncoderModules.FULL,
                        ranks));
                assertModules(m.name() + " te", modules.get("te"), targets);
            }));
        }
        return tests;
    }

    /**
     * The module lists of a model folder: its own {@code lora-modules.json}, else the fixtures root's
     * when its U-Net names are exactly the modules of the folder's {@code locon.safetensors} (the root
     * file describes one configuration); null when none fits.
     */
    static JsonNode moduleLists(ModelFixture m) {
        Path own = m.file("lora-modules.json");
        if (Files.exists(own)) {
            return json(own);
        }
        Path root = Fixtures.resolve("lora-modules.json");
        if (!Files.exists(root)) {
            return null;
        }
        JsonNode lists = json(root);
        Set<String> listed = new TreeSet<>();
        lists.get("unet").forEach(e -> listed.add(e.get("lora_name").asText()));
        Set<String> inFile = new TreeSet<>();
        try (SafetensorsFile f = SafetensorsFile.open(m.file("locon.safetensors"))) {
            f.names().forEach(k -> inFile.add(k.substring(0, k.indexOf('.'))));
        }
        return listed.equals(inFile) ? lists : null;
    }

    private static String shape(TensorInfo info) {
        return tenmin.engine.api.Shape.of(info.shape()).toString();
    }

    /** Text encoder 1 of {@code config} (HF {@code CLIPTextModel} layout) on meta weights: its adaptable layers. */
    static List<AdaptableLayer> te1Layers(ClipTextConfig config) {
        return ClipTextEncoder.hf(MetaParams.of(ClipKeys.TE1_PREFIX), config).adaptableLayers();
    }

    /**
     * Text encoder 2 of {@code config} (OpenCLIP layout, its layers under the HF names sd-scripts' converter
     * gives) on meta weights: its adaptable layers, plus {@code text_projection}, a Linear outside the encoder
     * layers in the converted model, which preset full must not wrap.
     */
    static List<AdaptableLayer> te2Layers(ClipTextConfig config) {
        List<AdaptableLayer> layers = new ArrayList<>(
                ClipTextEncoder.openClip(MetaParams.of(ClipKeys.TE2_PREFIX), config).adaptableLayers());
        MetaParams converted = MetaParams.of("");
        new Linear(converted.at("text_projection"), config.width(), config.projectionDim(), false);
        layers.addAll(converted.layers());
        return layers;
    }

    // ---- the real SDXL architecture -----------------------------------------------------------

    @Test
    void realSdxlUnetHasTheRecipes788Modules() {
        JsonNode keys = json(Fixtures.require("sdxl-keys.json"));
        Unet unet = Unet.meta(UnetConfig.sdxlBase());
        List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), LoConRanks.recipe());
        assertModules("sdxl locon_unet", keys.get("locon_unet"), targets);
        long linear = targets.stream().filter(t -> !t.isConv()).count();
        long conv3 = targets.stream().filter(t -> t.isConv() && t.kernel() == 3).count();
        long conv1 = targets.stream().filter(t -> t.isConv() && t.kernel() == 1).count();
        assertEquals(List.of(739L, 38L, 11L), List.of(linear, conv3, conv1), "Linear, Conv3x3, Conv1x1");
        // trainer-spec §8.3: 112,842,240 trainable values in the U-Net part.
        assertEquals(112_842_240L, targets.stream().mapToLong(LoConTarget::parameterCount).sum());
    }

    @Test
    void realSdxlTextEncoderSetsHave264And88Modules() {
        JsonNode keys = json(Fixtures.require("sdxl-keys.json"));
        List<AdaptableLayer> te1Layers = te1Layers(ClipTextConfig.SDXL_TE1);
        List<AdaptableLayer> te2Layers = te2Layers(ClipTextConfig.SDXL_TE2);
        LoConRanks ranks = LoConRanks.linear(8, 4.0);
        for (TextEncoderModules which : TextEncoderModules.values()) {
            List<LoConTarget> targets = new ArrayList<>(LoConPreset.textEncoder(LoConPreset.TE1, te1Layers, which, ranks));
            targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, te2Layers, which, ranks));
            String list = which == TextEncoderModules.FULL ? "locon_te_full" : "locon_te_mlp";
            assertModules("sdxl " + list, keys.get(list), targets);
        }
    }
}
