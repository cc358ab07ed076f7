package tenmin.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.Cli;
import tenmin.testing.Fixtures;
import tenmin.testing.SyntheticLora;

/** {@code tenmin chop}: the guide's output verbatim, filtering, linear and compat scaling, bad vectors. */
class ChopTest {

    /** The guide's chop_blocks.py output (its tabs rendered as spaces, trailing spaces lost in the page). */
    private static final String GUIDE = """
            INFO: Blocks layout:
            INFO:   [ 0]  input_blocks.1 layers=9
            INFO:   [ 1]  input_blocks.2 layers=9
            INFO:   [ 2]  input_blocks.3 layers=3
            INFO:   [ 3]  input_blocks.4 layers=78
            INFO:   [ 4]  input_blocks.5 layers=75
            INFO:   [ 5]  input_blocks.6 layers=3
            INFO:   [ 6]  input_blocks.7 layers=318
            INFO:   [ 7]  input_blocks.8 layers=315
            INFO:   [ 8]  middle_block.0 layers=9
            INFO:   [ 9]  middle_block.1 layers=306
            INFO:   [10]  middle_block.2 layers=9
            INFO:   [11] output_blocks.0 layers=318
            INFO:   [12] output_blocks.1 layers=318
            INFO:   [13] output_blocks.2 layers=321
            INFO:   [14] output_blocks.3 layers=78
            INFO:   [15] output_blocks.4 layers=78
            INFO:   [16] output_blocks.5 layers=81
            INFO:   [17] output_blocks.6 layers=12
            INFO:   [18] output_blocks.7 layers=12
            INFO:   [19] output_blocks.8 layers=12
            INFO: Vector string : "1,INP01,INP02,INP03,INP04,INP05,INP06,INP07,INP08,MID00,MID01,MID02,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05,OUT06,OUT07,OUT08"
            INFO: Pass through layers: 264
            """;

    private static final String OUT01_ONLY = "1,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0";

    /** The guide's LoCon layout: 788 UNet modules + 88 text-encoder MLP modules, tiny ranks. */
    private static Path guideShapedLora(Path dir) {
        Path p = dir.resolve("guide-lora.safetensors");
        List<SyntheticLora.Module> mods = new ArrayList<>(SyntheticLora.sdxlModules("locon_unet", 1, 1));
        mods.addAll(SyntheticLora.sdxlModules("locon_te_mlp", 1, 1));
        SyntheticLora.write(p, mods, StDType.F16, 1, Map.of("ss_network_dim", "8", "ss_output_name", "guide"));
        return p;
    }

    /** Expands tabs to 8-column stops and drops trailing spaces: how the guide's page rendered the output. */
    private static String asRendered(String line) {
        StringBuilder sb = new StringBuilder();
        for (char c : line.toCharArray()) {
            if (c == '\t') {
                do {
                    sb.append(' ');
                } while (sb.length() % 8 != 0);
            } else {
                sb.append(c);
            }
        }
        return sb.toString().stripTrailing();
    }

    @Test
    void guideCopyInThisTestMatchesTheGuideFile() throws IOException {
        Path guide = Fixtures.root().getParent().resolve("guide").resolve("10-minute-sdxl-lora-guide.txt");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(guide), "guide not beside the fixtures");
        String text = Files.readString(guide);
        int from = text.indexOf("INFO: Blocks layout:");
        int to = text.indexOf("INFO: Pass through layers: 264") + "INFO: Pass through layers: 264".length();
        assertEquals(GUIDE.strip(), text.substring(from, to).replace("\r", ""));
    }

    @Test
    void analysisPrintsTheGuideOutputVerbatim(@TempDir Path tmp) {
        Path lora = guideShapedLora(tmp);
        Cli.Run r = Cli.run("chop", lora.toString());
        assertEquals(0, r.exit(), r.toString());
        List<String> lines = r.out().lines().toList();
        assertEquals(GUIDE.lines().toList(), lines.stream().map(ChopTest::asRendered).toList(), r.toString());
        // the exact bytes chop_blocks c1 prints: a TAB after "INFO: " and layers={n:<3}
        assertEquals("INFO: \t[ 0]  input_blocks.1 layers=9  ", lines.get(1));
        assertEquals("INFO: \t[ 6]  input_blocks.7 layers=318", lines.get(7));
        assertEquals("INFO: \t[11] output_blocks.0 layers=318", lines.get(12));
        assertEquals("", r.err());
        assertEquals(List.of("guide-lora.safetensors"), Cli.listing(tmp), "analysis writes nothing");
    }

    @Test
    void plainAttentionLoraHasElevenBlocksAndPassesTextEncodersAndTimeEmbedThrough(@TempDir Path tmp) {
        // kohya networks.lora on SDXL: transformer Linears + proj_in/proj_out only, all 264 TE modules, and a
        // time_embed module (outside every block). Spec §1.1/§3.2: 10 Linears per transformer block plus
        // proj_in and proj_out per SpatialTransformer; depth 2 in input 4,5 and output 3-5, 10 elsewhere.
        Path p = tmp.resolve("plain.safetensors");
        List<SyntheticLora.Module> mods = new ArrayList<>();
        for (SyntheticLora.Module m : SyntheticLora.sdxlModules("locon_unet", 1, 1)) {
            String n = m.name();
            if (n.contains("_transformer_blocks_") || n.endsWith("_proj_in") || n.endsWith("_proj_out")) {
                mods.add(m);
            }
        }
        mods.addAll(SyntheticLora.sdxlModules("locon_te_full", 1, 1));
        mods.add(new SyntheticLora.Module("lora_unet_time_embed_0", 1280, 320, 1, false, 1, 0.5));
        SyntheticLora.write(p, mods, StDType.F16, 3, Map.of());
        Cli.Run r = Cli.run("chop", p.toString());
        assertEquals(0, r.exit(), r.toString());
        int deep = 3 * (10 * 10 + 2);
        int shallow = 3 * (2 * 10 + 2);
        String[][] expected = {{"input_blocks.4", "" + shallow}, {"input_blocks.5", "" + shallow}, {"input_blocks.7", "" + deep},
                {"input_blocks.8", "" + deep}, {"middle_block.1", "" + deep}, {"output_blocks.0", "" + deep},
                {"output_blocks.1", "" + deep}, {"output_blocks.2", "" + deep}, {"output_blocks.3", "" + shallow},
                {"output_blocks.4", "" + shallow}, {"output_blocks.5", "" + shallow}};
        List<String> want = new ArrayList<>(List.of("INFO: Blocks layout:"));
        for (int i = 0; i < expected.length; i++) {
            String section = expected[i][0].substring(0, expected[i][0].indexOf('.'));
            String idx = expected[i][0].substring(expected[i][0].indexOf('.') + 1);
            want.add(String.format("INFO: \t[%2d] %13s.%s layers=%-3s", i, section, idx, expected[i][1]));
        }
        want.add("INFO: Vector string : \"1,INP04,INP05,INP07,INP08,MID01,OUT00,OUT01,OUT02,OUT03,OUT04,OUT05\"");
        want.add("INFO: Pass through layers: " + (3 * (72 + 192) + 3));
        assertEquals(want, r.out().lines().toList());
    }

    @Test
    void textEncoderOnlyLoraShowsAnEmptyLayout(@TempDir Path tmp) {
        // chop c1 prints f'Vector string : "1,{vector_string}"' with an empty join: "1,"
        Path p = tmp.resolve("te.safetensors");
        SyntheticLora.write(p, SyntheticLora.sdxlModules("locon_te_mlp", 1, 1), StDType.F16, 4, Map.of());
        Cli.Run r = Cli.run("chop", p.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals(List.of("INFO: Blocks layout:", "INFO: Vector string : \"1,\"", "INFO: Pass through layers: 264"),
                r.out().lines().toList());
    }

    @Test
    void doraScaleCountsAsALayerOfItsBlock(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("dora.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        addModule(w, "lora_unet_input_blocks_4_1_proj_in");
        addModule(w, "lora_unet_output_blocks_1_1_proj_in");
        w.add("lora_unet_output_blocks_1_1_proj_in.dora_scale", StDType.F16, new long[] {5, 1}, out -> writeBits(out, new short[5]));
        w.write(p);
        Cli.Run r = Cli.run("chop", p.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals("INFO: \t[ 1] output_blocks.1 layers=4  ", r.out().lines().toList().get(2));
    }

    @Test
    void quietAnalysisPrintsNothing(@TempDir Path tmp) {
        Cli.Run r = Cli.run("chop", "-q", guideShapedLora(tmp).toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals("", r.out());
    }

    @Test
    void keepingOnlyOut01CopiesItsKeysAndTheTextEncodersByteForByte(@TempDir Path tmp) throws IOException {
        Path lora = guideShapedLora(tmp);
        String before = Cli.sha256(lora);
        Cli.Run r = Cli.run("chop", lora.toString(), OUT01_ONLY);
        assertEquals(0, r.exit(), r.toString());
        Path out = tmp.resolve("guide-lora-chop.safetensors");
        assertTrue(r.err().contains("INFO: \t[12] output_blocks.1 layers=318 weight=1\n"), r.err());
        assertTrue(r.err().contains("INFO: \t[11] output_blocks.0 layers=318 (removed)\n"), r.err());
        assertTrue(r.err().contains("INFO: Keeping 318 keys from the UNet, 264 passing through (text encoders)\n"), r.err());
        assertTrue(r.err().endsWith("INFO: Filtered LoRA saved to " + out + "\n"), r.err());
        assertEquals(before, Cli.sha256(lora), "input unchanged");
        try (SafetensorsFile in = SafetensorsFile.open(lora); SafetensorsFile o = SafetensorsFile.open(out)) {
            assertEquals(318 + 264, o.size());
            for (String key : o.names()) {
                assertTrue(key.startsWith("lora_te") || key.startsWith("lora_unet_output_blocks_1_"), key);
                assertArrayEquals(in.segment(key).toArray(ValueLayout.JAVA_BYTE), o.segment(key).toArray(ValueLayout.JAVA_BYTE), key);
                assertEquals(in.info(key).dtype(), o.info(key).dtype());
            }
            assertEquals("8", o.metadata().get("ss_network_dim"));
            assertEquals("guide", o.metadata().get("ss_output_name"));
            assertEquals(OUT01_ONLY, o.metadata().get("block_vector_string"));
        }
    }

    /** The spec's §3.7 fixture: 4 blocks of one module each, 5 text-encoder modules; fp16 values given as bits. */
    private static Path smallLora(Path dir, boolean withMetadata) throws IOException {
        Path p = dir.resolve("l1.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        if (withMetadata) {
            w.metadata("ss_network_alpha", "4");
        }
        String[] unet = {"lora_unet_input_blocks_1_0_in_layers_2", "lora_unet_input_blocks_4_1_proj_in",
                "lora_unet_middle_block_1_proj_out", "lora_unet_output_blocks_1_1_proj_in"};
        for (String m : unet) {
            addModule(w, m);
        }
        for (int i = 0; i < 5; i++) {
            addModule(w, "lora_te1_text_model_encoder_layers_" + i + "_mlp_fc1");
        }
        w.write(p);
        return p;
    }

    private static final short[] BITS = {0x3c00, 0x3555, (short) 0xbc01, 0x0001, 0x7bff, 0x2e66, (short) 0xc4d2, 0x1234,
            (short) 0x8400, 0x3a3a};

    private static void addModule(SafetensorsWriter w, String m) {
        w.add(m + ".lora_down.weight", StDType.F16, new long[] {2, 5}, out -> writeBits(out, BITS));
        w.add(m + ".lora_up.weight", StDType.F16, new long[] {5, 2}, out -> writeBits(out, BITS));
        w.add(m + ".alpha", StDType.F16, new long[0], out -> writeBits(out, new short[] {0x4400})); // 4.0
    }

    private static void writeBits(java.io.OutputStream out, short[] bits) throws IOException {
        for (short b : bits) {
            out.write(b & 0xFF);
            out.write((b >>> 8) & 0xFF);
        }
    }

    private static short[] bits(SafetensorsFile f, String key) {
        return f.segment(key).toArray(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN));
    }

    @Test
    void logsTheWeightedLayoutAsSpecExample37(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        Cli.Run r = Cli.run("chop", lora.toString(), "1,0,0.5,1,2");
        assertEquals(0, r.exit(), r.toString());
        Path out = tmp.resolve("l1-chop.safetensors");
        assertEquals("""
                INFO: Blocks layout:
                INFO: \t[ 0]  input_blocks.1 layers=3   (removed)
                INFO: \t[ 1]  input_blocks.4 layers=3   weight=0.5
                INFO: \t[ 2]  middle_block.1 layers=3   weight=1
                INFO: \t[ 3] output_blocks.1 layers=3   weight=2.0
                INFO: Keeping 9 keys from the UNet, 15 passing through (text encoders)
                INFO: Filtered LoRA saved to %s
                """.formatted(out), r.err());
    }

    @Test
    void verboseShowsTheWeightedLayoutUnlessCompat(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        Cli.Run r = Cli.run("chop", "-v", lora.toString(), "1,0,0.5,1,2", "-o", tmp.resolve("a.safetensors").toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.err().startsWith("INFO: Blocks layout:\nINFO: \t[ 0]  input_blocks.1 layers=3   (removed)\n"), r.err());
        // chop_blocks tests getEffectiveLevel() >= INFO, so at -v (DEBUG) it prints no weighted layout
        Path b = tmp.resolve("b.safetensors");
        r = Cli.run("chop", "-v", "--compat", lora.toString(), "1,0,0.5,1,2", "-o", b.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals("INFO: Keeping 9 keys from the UNet, 15 passing through (text encoders)\nINFO: Filtered LoRA saved to "
                + b + "\n", r.err());
        // and at the default level --compat prints it like the default mode
        r = Cli.run("chop", "--compat", lora.toString(), "1,0,0.5,1,2", "-o", tmp.resolve("c.safetensors").toString());
        assertTrue(r.err().startsWith("INFO: Blocks layout:\n"), r.err());
    }

    /** numpy: {@code np.array(BITS).view(float16) * 0.3} (numpy 2.4.6), as fp16 bits. */
    private static final short[] NUMPY_TIMES_03 = {0x34cd, 0x2e66, (short) 0xb4ce, 0x0000, 0x74cc, 0x27ae, (short) 0xbdc9,
            0x0b72, (short) 0x8133, 0x3379};

    @Test
    void fractionalWeightScalesOnlyLoraUpByDefault(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        Cli.Run r = Cli.run("chop", lora.toString(), "0.5,1,0.6,1,1", "-o", tmp.resolve("lin.safetensors").toString());
        assertEquals(0, r.exit(), r.toString());
        try (SafetensorsFile in = SafetensorsFile.open(lora); SafetensorsFile o = SafetensorsFile.open(tmp.resolve("lin.safetensors"))) {
            String m = "lora_unet_input_blocks_4_1_proj_in";  // effective weight 0.5 * 0.6 = 0.3
            assertArrayEquals(NUMPY_TIMES_03, bits(o, m + ".lora_up.weight"));
            assertArrayEquals(bits(in, m + ".lora_down.weight"), bits(o, m + ".lora_down.weight"));
            assertArrayEquals(bits(in, m + ".alpha"), bits(o, m + ".alpha"));
            // effective weight 0.5 elsewhere: up halved (the smallest subnormal rounds to 0), text encoders untouched
            float[] up = o.readFloats("lora_unet_middle_block_1_proj_out.lora_up.weight");
            float[] orig = in.readFloats("lora_unet_middle_block_1_proj_out.lora_up.weight");
            for (int i = 0; i < up.length; i++) {
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(orig[i] / 2)), up[i], 0, "element " + i);
            }
            String te = "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight";
            assertArrayEquals(bits(in, te), bits(o, te));
        }
    }

    @Test
    void compatScalesAlphaUpAndDownWithNumpyRounding(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        Path outPath = tmp.resolve("compat.safetensors");
        Cli.Run r = Cli.run("chop", "--compat", lora.toString(), "1,1,0.3,1,1", "-o", outPath.toString());
        assertEquals(0, r.exit(), r.toString());
        try (SafetensorsFile o = SafetensorsFile.open(outPath)) {
            String m = "lora_unet_input_blocks_4_1_proj_in";
            assertArrayEquals(NUMPY_TIMES_03, bits(o, m + ".lora_up.weight"));
            assertArrayEquals(NUMPY_TIMES_03, bits(o, m + ".lora_down.weight"));
            assertArrayEquals(new short[] {0x3ccd}, bits(o, m + ".alpha"), "numpy: float16(4) * 0.3 = 1.2 (0x3ccd)");
            assertEquals("1,1,0.3,1,1", o.metadata().get("block_vector_string"));
            assertEquals("4", o.metadata().get("ss_network_alpha"));
        }
    }

    @Test
    void inputWithoutMetadataGetsOnlyTheVector(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, false);
        Cli.Run r = Cli.run("chop", lora.toString(), "1,1,1,1,1");
        assertEquals(0, r.exit(), r.toString());
        try (SafetensorsFile o = SafetensorsFile.open(tmp.resolve("l1-chop.safetensors"))) {
            assertEquals(Map.of("block_vector_string", "1,1,1,1,1"), o.metadata());
            assertEquals(27, o.size());
        }
    }

    @Test
    void pythonFloatSyntaxIsAccepted(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        Cli.Run r = Cli.run("chop", lora.toString(), " 1 ,1_0e-1, .5 ,2.,+0");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.err().contains("[ 0]  input_blocks.1 layers=3   weight=1\n"), r.err());
        assertTrue(r.err().contains("[ 1]  input_blocks.4 layers=3   weight=0.5\n"), r.err());
        assertTrue(r.err().contains("[ 2]  middle_block.1 layers=3   weight=2.0\n"), r.err());
        assertTrue(r.err().contains("[ 3] output_blocks.1 layers=3   (removed)\n"), r.err());
    }

    @Test
    void wrongVectorLengthIsOneLineErrorNamingTheExpectedCount(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        String before = Cli.sha256(lora);
        Cli.Run r = Cli.run("chop", lora.toString(), "1,0,1");
        assertEquals(2, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("expected 4"), r.err());
        assertEquals(List.of("l1.safetensors"), Cli.listing(tmp));
        assertEquals(before, Cli.sha256(lora));
    }

    @Test
    void malformedVectorsAreRejected(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        for (String bad : new String[] {"1,0,a,1,1", "1,0,,1,1", "1,0,nan,1,1", "1,0,inf,1,1", "1,0,1d,1,1", "1,0,0x1,1,1", ""}) {
            Cli.Run r = Cli.run("chop", lora.toString(), bad);
            assertEquals(2, r.exit(), bad + ": " + r);
            assertEquals(1, r.err().lines().count(), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
        }
        assertEquals(List.of("l1.safetensors"), Cli.listing(tmp));
    }

    @Test
    void refusesToOverwriteItsInput(@TempDir Path tmp) throws IOException {
        Path lora = smallLora(tmp, true);
        String before = Cli.sha256(lora);
        Cli.Run r = Cli.run("chop", lora.toString(), "1,1,1,1,1", "-o", lora.toString());
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("overwrite the input"), r.err());
        assertEquals(before, Cli.sha256(lora));
    }

    @Test
    void helpListsExitCodesAndAnExample() {
        Cli.Run r = Cli.run("chop", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("Exit codes:") && r.out().contains("Example:"), r.out());
        assertTrue(HexFormat.of() != null);
    }
}
