package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.Reporter;
import tenmin.formats.PngFile;
import tenmin.testing.Cli;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.tools.Inspect;

/**
 * {@code tenmin atlas} on the tiny checkpoint with a three-block LoRA (the fixture LoCon chopped to INP04,
 * MID01, OUT05, with OUT05 scaled down to 3 %): the grid, CSV and JSON are written; energies equal
 * {@code tenmin inspect}'s; the measurements equal RMS distances computed here from separate
 * {@code tenmin sample} renders (base, full, each block alone and the proposal via block vectors); the
 * proposal leaves out the weak block and its vectors are accepted by {@code tenmin chop} and {@code tenmin blocks}.
 */
class AtlasCommandTest {
    private static final ModelFixture FIXTURE = ModelFixture.of(Fixtures.modelDirs().getFirst());
    private static final String CKPT = FIXTURE.file("checkpoint.safetensors").toString();
    private static final String CONFIG = FIXTURE.file("config.json").toString();
    private static final List<String> COMMON = List.of("--model", CKPT, "--model-config", CONFIG, "--prompt", "a red fox",
            "--negative", "blurry", "--seed", "3", "--steps", "3", "--width", "32", "--height", "32", "--cfg", "4");

    private static Cli.Run run(String command, List<String> extra) {
        List<String> a = new ArrayList<>(List.of(command));
        a.addAll(COMMON);
        a.addAll(extra);
        return Cli.run(a.toArray(String[]::new));
    }

    /** RMS difference of two PNGs, channels scaled to [0, 1]. */
    private static double rms(Path a, Path b) throws IOException {
        BufferedImage x = ImageIO.read(a.toFile());
        BufferedImage y = ImageIO.read(b.toFile());
        double sum = 0;
        int n = 0;
        for (int j = 0; j < x.getHeight(); j++) {
            for (int i = 0; i < x.getWidth(); i++) {
                int p = x.getRGB(i, j);
                int q = y.getRGB(i, j);
                for (int shift = 0; shift <= 16; shift += 8) {
                    double d = (((p >> shift) & 0xFF) - ((q >> shift) & 0xFF)) / 255.0;
                    sum += d * d;
                    n++;
                }
            }
        }
        return Math.sqrt(sum / n);
    }

    @Test
    void atlasWritesGridAndTablesWithMeasurementsAndVectorsThatChopAccepts(@TempDir Path tmp) throws IOException {
        Path three = tmp.resolve("three-blocks.safetensors");
        Cli.Run chop = Cli.run("chop", FIXTURE.file("locon.safetensors").toString(),
                "1,0,0,0,1,0,0,0,0,0,1,0,0,0,0,0,0,1,0,0,0", "-o", three.toString());
        assertEquals(0, chop.exit(), chop.toString());
        Path lora = tmp.resolve("three.safetensors");
        Cli.Run weaken = Cli.run("blocks", three.toString(), "1,1,1,0.03", "-o", lora.toString());
        assertEquals(0, weaken.exit(), weaken.toString());
        Path out = tmp.resolve("atlas");
        Cli.Run r = run("atlas", List.of("--lora", lora.toString(), "--remove", "--batch", "3", "-o", out.toString()));
        assertEquals(0, r.exit(), r.toString());
        assertEquals(List.of("00000-atlas-three-3.csv", "00000-atlas-three-3.json", "00000-atlas-three-3.png"),
                Cli.listing(out));

        JsonNode json = new ObjectMapper().readTree(out.resolve("00000-atlas-three-3.json").toFile());
        JsonNode units = json.get("units");
        assertEquals(3, units.size());
        assertEquals(List.of("INP04", "MID01", "OUT05"), List.of(units.get(0).get("unit").asText(),
                units.get(1).get("unit").asText(), units.get(2).get("unit").asText()));
        Inspect.LoraReport report = (Inspect.LoraReport) Inspect.run(lora, false, Reporter.SILENT);
        for (int u = 0; u < 3; u++) {
            Inspect.BlockEnergy e = report.blocks().get(u + 1); // [0] is BASE (empty here)
            assertEquals(e.chopName(), units.get(u).get("unit").asText());
            assertEquals(e.energy(), units.get(u).get("energy").asDouble(), 1e-9 * e.energy());
            assertEquals(e.share(), units.get(u).get("energy_share").asDouble(), 1e-9);
        }
        assertEquals(4, Files.readAllLines(out.resolve("00000-atlas-three-3.csv")).size());
        BufferedImage grid = ImageIO.read(out.resolve("00000-atlas-three-3.png").toFile());
        assertTrue(grid.getWidth() > 6 * 32 && grid.getHeight() > 2 * 32, grid.getWidth() + "x" + grid.getHeight());
        assertTrue(PngFile.readText(out.resolve("00000-atlas-three-3.png")).get("parameters").startsWith("a red fox"));

        // the measurements, from separate renders and distances computed here
        Path s = tmp.resolve("renders");
        assertEquals(0, run("sample", List.of("-o", s.toString())).exit());                                  // 00000 base
        assertEquals(0, run("sample", List.of("--lora", lora.toString(), "-o", s.toString())).exit());    // 00001 full
        String[] alone = {"0,1,0,0", "0,0,1,0", "0,0,0,1"};
        for (String v : alone) {
            assertEquals(0, run("sample", List.of("--lora", lora + ":1:" + v, "-o", s.toString())).exit());
        }
        Path base = s.resolve("00000-3.png");
        Path full = s.resolve("00001-3.png");
        double d = rms(full, base);
        assertEquals(d, json.get("full_distance").asDouble(), 0.02 * d);
        for (int u = 0; u < 3; u++) {
            Path a = s.resolve(String.format("%05d-3.png", 2 + u));
            double move = rms(a, base) / d;
            double toward = 1 - rms(a, full) / d;
            assertEquals(move, units.get(u).get("move").asDouble(), 0.03, "move of " + alone[u]);
            assertEquals(toward, units.get(u).get("toward").asDouble(), 0.03, "toward of " + alone[u]);
            assertTrue(units.get(u).hasNonNull("without"));
        }

        // INP04 alone is not enough, INP04 + MID01 are: the weak OUT05 is left out
        JsonNode proposal = json.get("proposal");
        assertEquals("[\"INP04\",\"MID01\"]", proposal.get("units").toString());
        String chopVector = proposal.get("chop_vector").asText();
        assertEquals("1,1,1,0", chopVector);
        assertEquals("1,1,1,0", proposal.get("block_vector").asText());
        assertTrue(r.out().contains("chop vector: 1,1,1,0"), r.out());
        assertEquals(0, run("sample", List.of("--lora", lora + ":1:0,1,1,0", "-o", s.toString())).exit()); // 00005
        double kept = 1 - rms(s.resolve("00005-3.png"), full) / d;
        assertTrue(kept >= 0.9, "proposal covers " + kept);
        assertEquals(kept, proposal.get("toward").asDouble(), 0.03);
        assertTrue(units.get(0).get("toward").asDouble() < 0.9, units.toString());
        Cli.Run chopped = Cli.run("chop", lora.toString(), chopVector, "-o", tmp.resolve("proposed.safetensors").toString());
        assertEquals(0, chopped.exit(), chopped.toString());
        Cli.Run blocks = Cli.run("blocks", lora.toString(), proposal.get("block_vector").asText(), "-o",
                tmp.resolve("proposed-lbw.safetensors").toString());
        assertEquals(0, blocks.exit(), blocks.toString());
    }

    @Test
    void atlasRejectsBadInputBeforeRendering(@TempDir Path tmp) {
        Path out = tmp.resolve("atlas");
        Cli.Run missing = run("atlas", List.of("--lora", tmp.resolve("none.safetensors").toString(), "-o", out.toString()));
        assertEquals(2, missing.exit(), missing.toString());
        assertTrue(missing.err().contains("no such file"), missing.err());
        Cli.Run threshold = run("atlas", List.of("--lora", FIXTURE.file("locon.safetensors").toString(), "--threshold", "0",
                "-o", out.toString()));
        assertEquals(2, threshold.exit(), threshold.toString());
        assertTrue(threshold.err().contains("--threshold"), threshold.err());
        assertTrue(!Files.exists(out) || Cli.listing(out).isEmpty());
    }
}
