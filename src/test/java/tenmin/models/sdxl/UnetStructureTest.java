package tenmin.models.sdxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.engine.api.Shape;
import tenmin.models.nn.MetaParams;
import tenmin.testing.Fixtures;

/** The module layout of the real SDXL U-Net (keys, shapes, order) and the config and checkpointing options. */
class UnetStructureTest {

    @Test
    void realSdxlBuildsTheExactKeySetShapesAndOrderWithoutAllocating() throws IOException {
        JsonNode keys = new ObjectMapper().readTree(Files.readString(Fixtures.require("sdxl-keys.json")));
        List<String> expected = new ArrayList<>();
        for (JsonNode e : keys.get("unet")) {
            List<Integer> d = new ArrayList<>();
            e.get(1).forEach(n -> d.add(n.intValue()));
            expected.add(e.get(0).asText() + " " + Shape.of(d.stream().mapToInt(Integer::intValue).toArray()));
        }
        Unet unet = Unet.meta(UnetConfig.sdxlBase());   // no backend exists: nothing can be allocated
        List<String> actual = new ArrayList<>();
        for (Map.Entry<String, Shape> e : ((MetaParams) unet.params()).shapes().entrySet()) {
            actual.add(e.getKey() + " " + e.getValue());
        }
        assertEquals(1680, expected.size());
        assertEquals(String.join("\n", expected), String.join("\n", actual));
        long values = ((MetaParams) unet.params()).shapes().values().stream().mapToLong(Shape::numel).sum();
        assertEquals(2_567_463_684L, values, "SDXL base U-Net parameters");
    }

    @Test
    void realSdxlBlocksAndModuleClasses() {
        Unet unet = Unet.meta(UnetConfig.sdxlBase());
        List<String> blocks = unet.blockNames();
        assertEquals(8 + 1 + 9, blocks.size());
        assertEquals("input_blocks.1", blocks.getFirst());
        assertEquals("middle_block", blocks.get(8));
        assertEquals("output_blocks.8", blocks.getLast());
        Map<String, String> classes = unet.moduleClasses();
        assertEquals("ResBlock", classes.get("input_blocks.1.0"));
        assertEquals("Downsample", classes.get("input_blocks.3.0"));
        assertEquals("SpatialTransformer", classes.get("middle_block.1"));
        assertEquals("Upsample", classes.get("output_blocks.2.2"));
        assertEquals("Upsample", classes.get("output_blocks.5.2"));
        assertEquals(11, classes.values().stream().filter("SpatialTransformer"::equals).count());
        assertEquals(17, classes.values().stream().filter("ResBlock"::equals).count());
        assertEquals(70, classes.values().stream().filter("BasicTransformerBlock"::equals).count());
    }

    @Test
    void fixtureConfigsParse() {
        for (Path dir : Fixtures.modelDirs()) {
            UnetConfig c = UnetConfig.fromConfigFile(dir.resolve("config.json"));
            assertEquals(4 * c.modelChannels(), c.timeEmbedDim());
            assertTrue(c.levels() > 1, dir.toString());
        }
    }

    @Test
    void sdxlBaseConfigIsTheYamlOne() {
        UnetConfig c = UnetConfig.sdxlBase();
        assertEquals(List.of(320, 640, 1280), List.of(c.channels(0), c.channels(1), c.channels(2)));
        assertEquals(List.of(false, true, true), List.of(c.hasAttention(0), c.hasAttention(1), c.hasAttention(2)));
        assertEquals(20, c.heads(1280));
        assertEquals(1280, c.timeEmbedDim());
    }

    @Test
    void configErrorsNameTheFileAndKey(@TempDir Path tmp) throws IOException {
        Path unknown = tmp.resolve("unknown.json");
        Files.writeString(unknown, "{\"unet\": {\"model_channels\": 32, \"modle_channels\": 1}}");
        InputException e = assertThrows(InputException.class, () -> UnetConfig.fromConfigFile(unknown));
        assertTrue(e.getMessage().contains("unknown.json") && e.getMessage().contains("modle_channels"), e.getMessage());

        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, "{\"unet\": {\"in_channels\": 4, \"out_channels\": 4, \"model_channels\": 32,"
                + " \"channel_mult\": [1, 2], \"num_res_blocks\": \"two\", \"attention_resolutions\": [2],"
                + " \"transformer_depth\": [1, 1], \"num_head_channels\": 8, \"context_dim\": 64,"
                + " \"adm_in_channels\": 1568}}");
        e = assertThrows(InputException.class, () -> UnetConfig.fromConfigFile(bad));
        assertTrue(e.getMessage().contains("num_res_blocks"), e.getMessage());

        Path noUnet = tmp.resolve("none.json");
        Files.writeString(noUnet, "{}");
        e = assertThrows(InputException.class, () -> UnetConfig.fromConfigFile(noUnet));
        assertTrue(e.getMessage().contains("none.json"), e.getMessage());
    }

    @Test
    void checkpointPolicyParsesNamesAndRanges() {
        CheckpointPolicy p = CheckpointPolicy.parse("input_blocks.1-3, middle_block,output_blocks.7");
        assertTrue(p.checkpoints("input_blocks.2"));
        assertTrue(p.checkpoints("middle_block"));
        assertTrue(p.checkpoints("output_blocks.7"));
        assertFalse(p.checkpoints("input_blocks.4"));
        assertFalse(p.checkpoints("output_blocks.0"));
        assertTrue(CheckpointPolicy.parse("all").checkpoints("output_blocks.8"));
        assertFalse(CheckpointPolicy.parse("none").checkpoints("middle_block"));
        assertEquals(p, CheckpointPolicy.parse(p.toString()));
        assertThrows(IllegalArgumentException.class, () -> CheckpointPolicy.parse("input_block.1"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointPolicy.parse("output_blocks.3-1"));
    }

    @Test
    void checkpointingRejectsBlocksTheModelLacks() {
        Unet unet = Unet.meta(UnetConfig.sdxlBase());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> unet.setCheckpointing(CheckpointPolicy.parse("output_blocks.9")));
        assertTrue(e.getMessage().contains("output_blocks.9"), e.getMessage());
        unet.setCheckpointing(CheckpointPolicy.parse("input_blocks.1-8"));
        assertTrue(unet.checkpointing().checkpoints("input_blocks.8"));
    }
}
