package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 * on meta weights: nothing is allocated.
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
                try (SafetensorsFile ckpt = SafetensorsFile.open(m.file("checkpoint.safetensors"))) {
                    List<LoConTarget> targets = new ArrayList<>();
                    Map<String, int[]> shapes = shapes(ckpt);
                    targets.addAll(LoConPreset.textEncoder(LoConPreset.TE1, te1Layers(shapes, te1Prefix(m)),
                            TextEncoderModules.FULL, ranks));
                    targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, te2Layers(shapes, te2Prefix(m)),
                            TextEncoderModules.FULL, ranks));
                    assertModules(m.name() + " te", modules.get("te"), targets);
                }
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

    private static String te1Prefix(ModelFixture m) {
        return m.config().get("key_prefixes").get("te1").asText();
    }

    private static String te2Prefix(ModelFixture m) {
        return m.config().get("key_prefixes").get("te2").asText();
    }

    private static String shape(TensorInfo info) {
        return tenmin.engine.api.Shape.of(info.shape()).toString();
    }

    /** Key → shape of every tensor of a checkpoint. */
    static Map<String, int[]> shapes(SafetensorsFile ckpt) {
        Map<String, int[]> out = new HashMap<>();
        for (String k : ckpt.names()) {
            long[] d = ckpt.info(k).shape();
            int[] i = new int[d.length];
            for (int j = 0; j < d.length; j++) {
                i[j] = (int) d[j];
            }
            out.put(k, i);
        }
        return out;
    }

    /**
     * The Linear layers of an HF {@code CLIPTextModel} in module order (per encoder layer: self_attn
     * k, v, q, out_proj, then mlp fc1, fc2), sized from the TE1 keys under {@code prefix}.
     */
    static List<AdaptableLayer> te1Layers(Map<String, int[]> shapes, String prefix) {
        MetaParams p = MetaParams.of("");
        for (int n = 0; shapes.containsKey(prefix + "text_model.encoder.layers." + n + ".mlp.fc1.weight"); n++) {
            String layer = "text_model.encoder.layers." + n + ".";
            for (String sub : List.of("self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj",
                    "mlp.fc1", "mlp.fc2")) {
                int[] d = shapes.get(prefix + layer + sub + ".weight");
                new Linear(p.at(layer + sub), d[1], d[0], true);
            }
        }
        return p.layers();
    }

    /**
     * TE2 (OpenCLIP keys under {@code prefix}) as the HF-named Linear layers sd-scripts' converter makes
     * (fused in_proj → q, k, v; c_fc → fc1; c_proj → fc2), in HF module order, plus {@code text_projection}
     * (a Linear outside the encoder layers, which preset full must not wrap).
     */
    static List<AdaptableLayer> te2Layers(Map<String, int[]> shapes, String prefix) {
        MetaParams p = MetaParams.of("");
        for (int n = 0; shapes.containsKey(prefix + "transformer.resblocks." + n + ".attn.in_proj_weight"); n++) {
            String block = prefix + "transformer.resblocks." + n + ".";
            String layer = "text_model.encoder.layers." + n + ".";
            int width = shapes.get(block + "attn.in_proj_weight")[1];
            for (String sub : List.of("k_proj", "v_proj", "q_proj")) {
                new Linear(p.at(layer + "self_attn." + sub), width, width, true);
            }
            new Linear(p.at(layer + "self_attn.out_proj"), width, width, true);
            int[] fc = shapes.get(block + "mlp.c_fc.weight");
            new Linear(p.at(layer + "mlp.fc1"), fc[1], fc[0], true);
            new Linear(p.at(layer + "mlp.fc2"), fc[0], fc[1], true);
        }
        int[] proj = shapes.get(prefix + "text_projection");
        new Linear(p.at("text_projection"), proj[0], proj[1], false);
        return p.layers();
    }

    // ---- the real SDXL architecture -----------------------------------------------------------

    private static Map<String, int[]> shapes(JsonNode list) {
        Map<String, int[]> out = new HashMap<>();
        for (JsonNode e : list) {
            int[] d = new int[e.get(1).size()];
            for (int i = 0; i < d.length; i++) {
                d[i] = e.get(1).get(i).intValue();
            }
            out.put(e.get(0).asText(), d);
        }
        return out;
    }

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
        String te1 = "conditioner.embedders.0.transformer.";
        String te2 = "conditioner.embedders.1.model.";
        List<AdaptableLayer> te1Layers = te1Layers(shapes(keys.get("te1")), te1);
        List<AdaptableLayer> te2Layers = te2Layers(shapes(keys.get("te2")), te2);
        LoConRanks ranks = LoConRanks.linear(8, 4.0);
        for (TextEncoderModules which : TextEncoderModules.values()) {
            List<LoConTarget> targets = new ArrayList<>(LoConPreset.textEncoder(LoConPreset.TE1, te1Layers, which, ranks));
            targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, te2Layers, which, ranks));
            String list = which == TextEncoderModules.FULL ? "locon_te_full" : "locon_te_mlp";
            assertModules("sdxl " + list, keys.get(list), targets);
        }
    }
}
