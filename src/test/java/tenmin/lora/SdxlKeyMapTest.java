package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;
import tenmin.testing.Fixtures;

/** Every LoCon module of the real SDXL layout maps to a checkpoint weight of the right shape. */
class SdxlKeyMapTest {

    private static Map<String, long[]> shapes(JsonNode list) {
        Map<String, long[]> m = new HashMap<>();
        for (JsonNode row : list) {
            JsonNode s = row.get(1);
            long[] shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.get(i).asLong();
            }
            m.put(row.get(0).asText(), shape);
        }
        return m;
    }

    /** The shape a module's delta has in the checkpoint: [out, in] or [out, in, k, k]. */
    private static void checkModules(JsonNode modules, SdxlKeyMap map, Map<String, long[]> shapes) {
        for (JsonNode mod : modules) {
            String name = mod.get("lora_name").asText();
            SdxlKeyMap.Target t = map.target(name);
            assertNotNull(t, "no checkpoint weight for " + name);
            long[] shape = shapes.get(t.checkpointKey());
            long out = mod.get("out").asLong();
            long in = mod.get("in").asLong();
            int k = mod.get("kernel").asInt();
            assertEquals(out * t.chunks(), shape[0], name + " rows of " + t);
            assertEquals(in, shape[1], name + " columns of " + t);
            if (shape.length == 4) {
                assertEquals(k, shape[2], name);
            } else {
                assertEquals(1, k, name + " is a kernel but " + t.checkpointKey() + " is 2-D");
            }
        }
    }

    @Test
    void mapsTheRealSdxlLoconLayout() throws IOException {
        JsonNode root = new ObjectMapper().readTree(Fixtures.require("sdxl-keys.json").toFile());
        Map<String, long[]> shapes = shapes(root.get("unet"));
        shapes.putAll(shapes(root.get("te1")));
        shapes.putAll(shapes(root.get("te2")));
        SdxlKeyMap map = SdxlKeyMap.of(shapes);
        checkModules(root.get("locon_unet"), map, shapes);
        checkModules(root.get("locon_te_full"), map, shapes);
        checkModules(root.get("locon_te_mlp"), map, shapes);
        assertEquals(788, root.get("locon_unet").size());
    }

    @Test
    void splitsTextEncoder2InProjIntoQkvInThatOrder() {
        String key = "conditioner.embedders.1.model.transformer.resblocks.7.attn.in_proj_weight";
        SdxlKeyMap map = SdxlKeyMap.of(Map.of(key, new long[] {3840, 1280}));
        assertEquals(new SdxlKeyMap.Target(key, 0, 3), map.target("lora_te2_text_model_encoder_layers_7_self_attn_q_proj"));
        assertEquals(new SdxlKeyMap.Target(key, 1, 3), map.target("lora_te2_text_model_encoder_layers_7_self_attn_k_proj"));
        assertEquals(new SdxlKeyMap.Target(key, 2, 3), map.target("lora_te2_text_model_encoder_layers_7_self_attn_v_proj"));
    }

    @Test
    void mapsTinyCheckpointForEveryFixtureModule() throws IOException {
        for (Path dir : Fixtures.modelDirs()) {
            try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
                 SafetensorsFile locon = SafetensorsFile.open(dir.resolve("locon.safetensors"));
                 SafetensorsFile teLocon = SafetensorsFile.open(dir.resolve("te-locon.safetensors"))) {
                Map<String, long[]> shapes = new HashMap<>();
                for (TensorInfo t : ckpt.tensorsInFileOrder()) {
                    shapes.put(t.name(), t.shape());
                }
                SdxlKeyMap map = SdxlKeyMap.of(shapes);
                for (SafetensorsFile f : List.of(locon, teLocon)) {
                    for (String n : f.names()) {
                        if (!n.endsWith(".lora_up.weight")) {
                            continue;
                        }
                        String module = SdxlKeyMap.moduleOf(n);
                        SdxlKeyMap.Target t = map.target(module);
                        assertNotNull(t, dir.getFileName() + ": " + module);
                        long[] up = f.info(n).shape();
                        long[] down = f.info(module + ".lora_down.weight").shape();
                        long[] w = shapes.get(t.checkpointKey());
                        assertEquals(w[0], up[0] * t.chunks(), module);
                        assertEquals(w[1], down[1], module);
                    }
                }
            }
        }
    }

    @Test
    void findsTheUnetBlockOfAModule() {
        assertEquals("input_blocks.4", SdxlKeyMap.blockOf("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"));
        assertEquals("middle_block.1", SdxlKeyMap.blockOf("lora_unet_middle_block_1_proj_in"));
        assertEquals("output_blocks.10", SdxlKeyMap.blockOf("lora_unet_output_blocks_10_0_skip_connection"));
        assertNull(SdxlKeyMap.blockOf("lora_unet_time_embed_0"));
        assertNull(SdxlKeyMap.blockOf("lora_te1_text_model_encoder_layers_0_mlp_fc1"));
        assertEquals("lora_unet_x", SdxlKeyMap.moduleOf("lora_unet_x.lora_down.weight"));
        assertArrayEquals(new Object[] {"lora_unet_out_2"},
                SdxlKeyMap.loraNamesFor("model.diffusion_model.out.2.weight").toArray());
    }
}
