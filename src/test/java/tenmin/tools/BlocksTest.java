package tenmin.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;
import tenmin.testing.DenseDelta;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

/** {@code tenmin blocks} on the fixture LoCon (tiny SDXL topology: the same 20 blocks as the real one). */
class BlocksTest {

    private static Path copyOfFixtureLocon(Path tmp) throws IOException {
        Path p = tmp.resolve("locon.safetensors");
        Files.copy(Fixtures.modelDirs().get(0).resolve("locon.safetensors"), p);
        return p;
    }

    private static byte[] bytes(SafetensorsFile f, String key) {
        return f.segment(key).toArray(ValueLayout.JAVA_BYTE);
    }

    private static float[] delta(SafetensorsFile f, String module) {
        return DenseDelta.of(f, module).toFloats();
    }

    @Test
    void outallPresetKeepsTheOutputBlocksByteForByte(@TempDir Path tmp) throws IOException {
        Path lora = copyOfFixtureLocon(tmp);
        String before = Cli.sha256(lora);
        Cli.Run r = Cli.run("blocks", lora.toString(), "SDXL-LyC-OUTALL");
        assertEquals(0, r.exit(), r.toString());
        Path out = tmp.resolve("locon-lbw.safetensors");
        assertTrue(r.out().contains("Populated vector: 1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1\n"), r.out());
        assertTrue(r.out().contains("Saved " + out), r.out());
        assertEquals(before, Cli.sha256(lora));
        try (SafetensorsFile in = SafetensorsFile.open(lora); SafetensorsFile o = SafetensorsFile.open(out)) {
            int expected = 0;
            for (String k : in.names()) {
                if (k.startsWith("lora_unet_output_blocks_")) {
                    expected++;
                    assertArrayEquals(bytes(in, k), bytes(o, k), k);
                } else {
                    assertFalse(o.contains(k), k);
                }
            }
            assertEquals(expected, o.size());
            assertEquals("SDXL-LyC-OUTALL", o.metadata().get("block_vector_string"));
            assertEquals("lycoris.kohya", o.metadata().get("ss_network_module"));
            JsonNode params = new ObjectMapper().readTree(o.metadata().get("block_weight_params"));
            assertEquals("inspire", params.get("format").asText());
            assertEquals("1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1", params.get("populated_vector").asText());
        }
    }

    @Test
    void fractionalRatioScalesTheDeltaLinearly(@TempDir Path tmp) throws IOException {
        Path lora = copyOfFixtureLocon(tmp);
        Path out = tmp.resolve("scaled.safetensors");
        // BASE, IN00..IN08, MID, OUT00..OUT08 (A1111 20-slot form): IN01 = 0.3, MID = 0.7, everything else 1
        String v = "1,1,0.3,1,1,1,1,1,1,1,0.7,1,1,1,1,1,1,1,1,1";
        Cli.Run r = Cli.run("blocks", lora.toString(), v, "-o", out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("A1111 lora-block-weight, 20 slots"), r.out());
        try (SafetensorsFile in = SafetensorsFile.open(lora); SafetensorsFile o = SafetensorsFile.open(out)) {
            assertEquals(in.size(), o.size());
            for (String[] c : new String[][] {{"lora_unet_input_blocks_1_0_in_layers_2", "0.3"},
                    {"lora_unet_input_blocks_1_0_emb_layers_1", "0.3"}, {"lora_unet_middle_block_1_proj_in", "0.7"},
                    {"lora_unet_middle_block_2_out_layers_3", "0.7"}}) {
                String m = c[0];
                double ratio = Double.parseDouble(c[1]);
                float[] expected = delta(in, m);
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = (float) (expected[i] * ratio);
                }
                Numerics.assertRelClose(m, in.info(m + ".lora_down.weight").shape(), expected, delta(o, m), 1e-6);
                assertArrayEquals(bytes(in, m + ".alpha"), bytes(o, m + ".alpha"), "alpha unchanged");
                assertArrayEquals(bytes(in, m + ".lora_down.weight"), bytes(o, m + ".lora_down.weight"), "down unchanged");
            }
            String k = "lora_unet_output_blocks_1_1_proj_in.lora_up.weight";
            assertArrayEquals(bytes(in, k), bytes(o, k), "ratio 1 copies bytes");
        }
    }

    @Test
    void badVectorsFailWithOneLineAndNoFile(@TempDir Path tmp) throws IOException {
        Path lora = copyOfFixtureLocon(tmp);
        String before = Cli.sha256(lora);
        for (String bad : new String[] {"NOPE", "1,0,x,1,1,1,1,1,1,1,1,1", "%in=abc", "SDXL-LyC-NONE", "1,2"}) {
            Cli.Run r = Cli.run("blocks", lora.toString(), bad);
            assertEquals(2, r.exit(), bad + ": " + r);
            assertEquals(1, r.err().lines().count(), r.toString());
            assertTrue(r.err().startsWith("tenmin blocks: error: "), r.err());
        }
        Cli.Run r = Cli.run("blocks", lora.toString(), "SDXL-LyC-ALL", "--format", "weird");
        assertEquals(2, r.exit(), r.toString());
        assertEquals(List.of("locon.safetensors"), Cli.listing(tmp));
        assertEquals(before, Cli.sha256(lora));
    }

    @Test
    void helpListsExitCodesAndAnExample() {
        Cli.Run r = Cli.run("blocks", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("Exit codes:") && r.out().contains("Example:") && r.out().contains("%default"), r.out());
    }
}
