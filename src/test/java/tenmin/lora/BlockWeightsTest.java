package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.lora.BlockWeights.Format;
import tenmin.lora.BlockWeights.Options;
import tenmin.testing.Fixtures;

/** Block-weight vectors (postprocess-spec §4, §5) resolved on the real SDXL LoCon module set. */
class BlockWeightsTest {
    private static final String GUIDE_OUT01 = "1,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0";

    private static List<String> names(String list) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Fixtures.require("sdxl-keys.json").toFile());
        List<String> out = new ArrayList<>();
        root.get(list).forEach(m -> out.add(m.get("lora_name").asText()));
        return out;
    }

    /** The guide's LoCon: 788 UNet + 88 text-encoder MLP modules (20 blocks). */
    private static List<String> locon() throws IOException {
        List<String> all = new ArrayList<>(names("locon_unet"));
        all.addAll(names("locon_te_mlp"));
        return all;
    }

    /** A kohya networks.lora-style attention-only LoRA: the transformer Linear modules (11 blocks). */
    private static List<String> attentionOnly() throws IOException {
        List<String> out = new ArrayList<>();
        for (String n : locon()) {
            if (n.contains("_transformer_blocks_") || n.contains("_proj_in") || n.contains("_proj_out") || n.startsWith("lora_te")) {
                out.add(n);
            }
        }
        return out;
    }

    private static Options opts(Format f) {
        return new Options(f, false, 0, 4.0, 1.0);
    }

    @Test
    void numpyGeneratorMatchesNumpy() {
        // np.random.seed(0); np.random.random_sample() x3 (numpy 2.4.6)
        NumpyRandom r = new NumpyRandom(0);
        assertEquals(0.5488135039273248, r.nextDouble());
        assertEquals(0.7151893663724195, r.nextDouble());
        assertEquals(0.6027633760716439, r.nextDouble());
        // np.random.seed(12345); round(uniform(0,3.0),2) x4, round(uniform(-1.5,1.5),2) x4
        r = new NumpyRandom(12345);
        double[] expected = {2.79, 0.95, 0.55, 0.61, 0.2, 0.29, 1.39, 0.46};
        for (int i = 0; i < 8; i++) {
            double v = i < 4 ? r.uniform(0, 3.0) : r.uniform(-1.5, 1.5);
            assertEquals(expected[i], NumpyRandom.round(v, 2), "draw " + i);
        }
        assertEquals(0.3933911315501387, new NumpyRandom(2147483647).nextDouble());
    }

    @Test
    void compatReusesTheEntryWhenTheSectionChangesButTheBlockNumberDoesNot() {
        // spec §4.3 edge bug: Inspire-Pack takes a new entry only when N changes, so input_blocks.1,
        // middle_block.1, output_blocks.1 all use entry 1 there; by default each block takes its own entry
        List<String> mods = List.of("lora_unet_input_blocks_1_0_in_layers_2", "lora_unet_middle_block_1_proj_in",
                "lora_unet_output_blocks_1_1_proj_in", "lora_unet_output_blocks_2_1_proj_in", "lora_te1_text_model_encoder_layers_0_mlp_fc1");
        String v = "1,0.5,0.25,0.75,0.125,0,0,0,0,0,0,0";
        BlockWeights w = BlockWeights.resolve(v, mods, opts(Format.INSPIRE));
        assertEquals(List.of(0.5, 0.25, 0.75, 0.125, 1.0), mods.stream().map(w::ratio).toList());
        assertEquals("1,0.5,0.25,0.75,0.125", w.populated());
        BlockWeights c = BlockWeights.resolve(v, mods, new Options(Format.INSPIRE, false, 0, 4.0, 1.0, true));
        assertEquals(List.of(0.5, 0.5, 0.5, 0.25, 1.0), mods.stream().map(c::ratio).toList());
        assertEquals("1,0.5,0.25", c.populated());
    }

    @Test
    void architectureOrderIsTheStateDictOrder() throws IOException {
        List<String> expected = names("locon_unet"); // listed in the UNet's module order
        List<String> shuffled = new ArrayList<>(expected);
        Collections.shuffle(shuffled, new Random(3));
        shuffled.sort(BlockWeights.ARCHITECTURE_ORDER);
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), shuffled.get(i), "position " + i);
        }
    }

    @Test
    void guideVectorKeepsOnlyOutputBlock1AndTheTextEncoders() throws IOException {
        BlockWeights w = BlockWeights.resolve(GUIDE_OUT01, locon(), Options.defaults());
        assertEquals(Format.INSPIRE, w.format());
        assertEquals(GUIDE_OUT01, w.populated());
        for (String m : locon()) {
            double expected = m.startsWith("lora_te") || m.startsWith("lora_unet_output_blocks_1_") ? 1 : 0;
            assertEquals(expected, w.ratio(m), m);
        }
        assertEquals(21, w.entries().size());
        assertEquals("BASE", w.entries().get(0).label());
        assertEquals(88, w.entries().get(0).modules());
        assertEquals("output_blocks.1", w.entries().get(13).label());
        assertTrue(w.warnings().isEmpty(), w.warnings().toString());
    }

    @Test
    void lycorisPresetsAddressTheTwentyBlocks() throws IOException {
        BlockWeights w = BlockWeights.resolve("SDXL-LyC-MIDALL", locon(), Options.defaults());
        for (String m : locon()) {
            double expected = m.startsWith("lora_te") || m.startsWith("lora_unet_middle_block_") ? 1 : 0;
            assertEquals(expected, w.ratio(m), m);
        }
        assertEquals("1,0,0,0,0,0,0,0,0,1,1,1,0,0,0,0,0,0,0,0,0", w.populated());
        BlockWeights named = BlockWeights.resolve("mine:" + GUIDE_OUT01, locon(), Options.defaults());
        assertEquals(GUIDE_OUT01, named.populated());
    }

    @Test
    void attentionOnlyPresetHasTwelveEntries() throws IOException {
        List<String> mods = attentionOnly();
        BlockWeights w = BlockWeights.resolve("SDXL-OUTALL", mods, Options.defaults());
        assertEquals(12, w.entries().size());
        for (String m : mods) {
            double expected = m.startsWith("lora_te") || m.startsWith("lora_unet_output_blocks_") ? 1 : 0;
            assertEquals(expected, w.ratio(m), m);
        }
        // the same 12 numbers read as the A1111 fixed slots give the same ratios
        BlockWeights fixed = BlockWeights.resolve("1,0,0,0,0,0,1,1,1,1,1,1", mods, opts(Format.LBW));
        for (String m : mods) {
            assertEquals(w.ratio(m), fixed.ratio(m), m);
        }
    }

    @Test
    void shortVectorsCarryTheLastRatioAndLongOnesAreTruncated() throws IOException {
        String v = "1,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.25,0.75"; // 11 block entries for 20 blocks
        BlockWeights w = BlockWeights.resolve(v, locon(), opts(Format.INSPIRE));
        assertEquals(0.1, w.ratio("lora_unet_input_blocks_1_0_in_layers_2"));
        assertEquals(0.25, w.ratio("lora_unet_middle_block_1_proj_in"));
        assertEquals(0.75, w.ratio("lora_unet_middle_block_2_out_layers_3"));
        assertEquals(0.75, w.ratio("lora_unet_output_blocks_8_0_skip_connection"), "carried");
        assertEquals(v, w.populated());
        BlockWeights longer = BlockWeights.resolve(GUIDE_OUT01 + ",1,1", locon(), opts(Format.INSPIRE));
        assertEquals(GUIDE_OUT01, longer.populated());
        assertEquals(1, longer.warnings().size(), longer.warnings().toString());
    }

    @Test
    void spaceSeparatedValuesGoToSuccessiveModulesOfABlock() throws IOException {
        String v = "1,0.5 0.25" + ",1".repeat(19);
        BlockWeights w = BlockWeights.resolve(v, locon(), Options.defaults());
        // input_blocks.1 = ResBlock in_layers.2, emb_layers.1, out_layers.3 in that order
        assertEquals(0.5, w.ratio("lora_unet_input_blocks_1_0_in_layers_2"));
        assertEquals(0.25, w.ratio("lora_unet_input_blocks_1_0_emb_layers_1"));
        assertEquals(0.25, w.ratio("lora_unet_input_blocks_1_0_out_layers_3"), "last value repeats");
        assertEquals(1, w.ratio("lora_unet_input_blocks_2_0_in_layers_2"));
        assertTrue(w.populated().startsWith("1,0.5,1,"), w.populated());
    }

    @Test
    void randomEntriesDrawFromNumpyInBlockOrderThenBase() throws IOException {
        String v = "U,R" + ",1".repeat(19);
        BlockWeights w = BlockWeights.resolve(v, locon(), new Options(Format.AUTO, false, 12345, 4, 1));
        // numpy: seed(12345); round(uniform(0,3),2) = 2.79 (block 1), then round(uniform(-1.5,1.5),2) = -0.55 (BASE)
        assertEquals(2.79, w.ratio("lora_unet_input_blocks_1_0_in_layers_2"));
        assertEquals(-0.55, w.ratio("lora_te1_text_model_encoder_layers_0_mlp_fc1"));
        assertTrue(w.populated().startsWith("-0.55,2.79,1,"), w.populated());
        // seed % 2^31, as Inspire-Pack reduces it
        BlockWeights same = BlockWeights.resolve(v, locon(), new Options(Format.AUTO, false, 12345 + (1L << 31), 4, 1));
        assertEquals(w.populated(), same.populated());
    }

    @Test
    void lettersAandBAndInverse() throws IOException {
        String v = "B,A,a,b" + ",0".repeat(17);
        BlockWeights w = BlockWeights.resolve(v, locon(), new Options(Format.AUTO, false, 0, 3.0, 0.5));
        assertEquals("0.5,3.0,1.5,0.25" + ",0".repeat(17), w.populated());
        BlockWeights inv = BlockWeights.resolve(GUIDE_OUT01, locon(), new Options(Format.AUTO, true, 0, 4, 1));
        assertEquals("0,1,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,1,1,1,1", inv.populated());
        assertEquals(0, inv.ratio("lora_te1_text_model_encoder_layers_0_mlp_fc1"));
        assertEquals(1, inv.ratio("lora_unet_input_blocks_1_0_in_layers_2"));
    }

    @Test
    void percentShorthandExpandsOverTheBlocksPresent() throws IOException {
        List<String> blocksOnly = new ArrayList<>(names("locon_unet"));
        blocksOnly.sort(BlockWeights.ARCHITECTURE_ORDER);
        String expanded = BlockWeights.expandShorthand("%default=0, out=1, in2-4=0.5, mid2=0.25, base=1", blocksOnly);
        // Inspire-Pack renders typed values as typed and parsed ones with str(float)
        assertEquals("1,0,0.5,0.5,0.5,0,0,0,0,0,0.25,0,1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0", expanded);
        BlockWeights w = BlockWeights.resolve("%default=0,out=1,base=1", locon(), Options.defaults());
        assertEquals(1, w.ratio("lora_unet_output_blocks_4_1_proj_in"));
        assertEquals(0, w.ratio("lora_unet_input_blocks_4_1_proj_in"));
        assertEquals(1, w.ratio("lora_te2_text_model_encoder_layers_0_mlp_fc1"));
        assertEquals("1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1", w.populated());
    }

    @Test
    void fixedTwentySlotsUseOneMidValueAndIn00() throws IOException {
        //            BASE IN00..IN08         MID  OUT00..OUT08
        String v = "0.5,9,1,0,0,0,0,0,0,0,0.25,0,0,1,0,0,0,0,0,0";
        BlockWeights w = BlockWeights.resolve(v, locon(), Options.defaults());
        assertEquals(Format.LBW, w.format());
        assertEquals(1, w.ratio("lora_unet_input_blocks_1_0_in_layers_2"));
        assertEquals(0, w.ratio("lora_unet_input_blocks_2_0_in_layers_2"));
        assertEquals(0.25, w.ratio("lora_unet_middle_block_0_in_layers_2"));
        assertEquals(0.25, w.ratio("lora_unet_middle_block_2_out_layers_3"));
        assertEquals(1, w.ratio("lora_unet_output_blocks_2_2_conv"));
        assertEquals(0.5, w.ratio("lora_te1_text_model_encoder_layers_0_mlp_fc1"));
        assertEquals(20, w.entries().size());
        assertEquals(0, w.entries().get(1).modules(), "no conv_in in a LoCon");
    }

    @Test
    void fixedTwelveSlotsZeroTheBlocksTheyDoNotList() throws IOException {
        BlockWeights w = BlockWeights.resolve("1,1,1,1,1,1,1,1,1,1,1,1", locon(), Options.defaults());
        assertEquals(Format.LBW, w.format());
        assertEquals(0, w.ratio("lora_unet_input_blocks_1_0_in_layers_2"), "IN01 is not a 12-slot block");
        assertEquals(0, w.ratio("lora_unet_output_blocks_7_0_in_layers_2"), "OUT07 neither");
        assertEquals(1, w.ratio("lora_unet_input_blocks_4_1_proj_in"));
        assertTrue(w.warnings().stream().anyMatch(s -> s.contains("IN01")), w.warnings().toString());
        // R and U: hako's ranges, numpy's seeding. seed(7): round(random_sample(),3) = 0.076, 0.78; round(uniform(-0.5,1.5),3) = 0.377
        BlockWeights r = BlockWeights.resolve("R,R,U,1,1,1,1,1,1,1,1,1", locon(), new Options(Format.LBW, false, 7, 4, 1));
        assertTrue(r.populated().startsWith("0.076,0.78,0.377,1,"), r.populated());
    }

    @Test
    void autoFormatPicksInspireForTwentyOneAndLbwForTwentyEntries() throws IOException {
        assertEquals(Format.INSPIRE, BlockWeights.resolve(GUIDE_OUT01, locon(), Options.defaults()).format());
        assertEquals(Format.LBW, BlockWeights.resolve("1" + ",1".repeat(19), locon(), Options.defaults()).format());
        assertEquals(Format.INSPIRE, BlockWeights.resolve("A" + ",1".repeat(11), locon(), Options.defaults()).format());
        assertEquals(Format.INSPIRE, BlockWeights.resolve("1" + ",1".repeat(19), locon(), opts(Format.INSPIRE)).format());
    }

    @Test
    void malformedVectorsAreInputErrors() throws IOException {
        List<String> mods = locon();
        for (String bad : new String[] {"1,0,x" + ",0".repeat(18), "1,.5" + ",0".repeat(19), "1,1e3" + ",0".repeat(19),
                "1,0  1" + ",0".repeat(19), "1,2,3", "NOPE", "%foo=1", "%in=-1", "%in=1.2.3", "", " "}) {
            InputException e = assertThrows(InputException.class, () -> BlockWeights.resolve(bad, mods, opts(Format.INSPIRE)),
                    "\"" + bad + "\"");
            assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        }
        assertThrows(InputException.class, () -> BlockWeights.resolve("1" + ",1".repeat(12), mods, opts(Format.LBW)));
        assertThrows(InputException.class, () -> BlockWeights.resolve("A" + ",1".repeat(11), mods, opts(Format.LBW)));
        InputException e = assertThrows(InputException.class, () -> BlockWeights.resolve("NOPE", mods, Options.defaults()));
        assertTrue(e.getMessage().contains("SDXL-LyC-ALL"), e.getMessage());
    }
}
