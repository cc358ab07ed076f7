package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;

/**
 * {@code tenmin train} without a model or dataset: the built-in demo. A one-step smoke run here; the full
 * demo (24 steps, samples every 8, about 40 s on two cores) is the opt-in slow test.
 */
class DemoTest {
    @TempDir
    Path tmp;

    @Test
    void demoPathRunsOneStep() throws Exception {
        Path out = tmp.resolve("demo");
        Cli.Run run = Cli.run("train", "--output_dir=" + out, "--max_train_steps=1", "--save_every_n_steps=100",
                "--sample_every_n_steps=100", "--cpu_threads=2");
        assertEquals(0, run.exit(), run.toString());
        assertTrue(run.err().contains("built-in demo: a tiny SDXL-shaped model with RANDOM weights"), run.toString());
        assertTrue(run.out().contains("trained 1 steps; final LoRA " + out.resolve("last.safetensors")), run.toString());
        assertTrue(Files.isRegularFile(out.resolve("last.safetensors")));
        assertTrue(Files.isDirectory(out.resolve("dataset").resolve("4_ohwx shapes")));
        runsItsNextSteps(run.out(), out);
    }

    /**
     * The commands the demo prints after training, read back as a shell would split them, run on its files: each
     * exits 0 and writes what it says (the renders with 2 steps instead of the printed 12, to stay fast).
     */
    private static void runsItsNextSteps(String stdout, Path out) throws Exception {
        String next = stdout.substring(stdout.indexOf("next, the guide's other steps"));
        List<String> lines = next.lines().map(String::strip).filter(l -> l.startsWith("tenmin ")).toList();
        assertEquals(List.of("inspect", "atlas", "chop", "sample", "resize", "merge"),
                lines.stream().map(l -> Cli.shellSplit(l).get(1)).toList(), stdout);
        String atlasChop = null;
        for (String line : lines) {
            List<String> split = Cli.shellSplit(line);
            List<String> words = new ArrayList<>(split.subList(1, split.size()));
            int steps = words.indexOf("--steps");
            if (steps >= 0) {
                assertEquals("12", words.get(steps + 1), line);
                words.set(steps + 1, "2");
            }
            Cli.Run r = Cli.run(words.toArray(String[]::new));
            assertEquals(0, r.exit(), line + "\n" + r);
            switch (words.get(0)) {
                case "inspect" -> assertTrue(r.out().contains("energy"), r.toString());
                case "chop" -> assertTrue(r.out().contains("INP"), r.toString());
                case "resize" -> assertTrue(Files.isRegularFile(out.resolve("last_frockpt1_th-3.55.safetensors")),
                        r.toString());
                case "merge" -> assertTrue(Files.isRegularFile(out.resolve("merged.safetensors")), r.toString());
                case "atlas" -> atlasChop = r.out().lines().filter(l -> l.startsWith("chop vector: ")).findFirst()
                        .map(l -> l.substring(l.indexOf("(tenmin ") + 1, l.lastIndexOf(')'))).orElse(null);
                default -> {
                }
            }
        }
        // the atlas's own suggestion, a chop with the vector it proposes, runs too and writes <stem>-chop.safetensors
        assertTrue(atlasChop != null && atlasChop.startsWith("tenmin chop " + out.resolve("last.safetensors") + " "),
                String.valueOf(atlasChop));
        List<String> chop = Cli.shellSplit(atlasChop);
        Cli.Run chopped = Cli.run(chop.subList(1, chop.size()).toArray(String[]::new));
        assertEquals(0, chopped.exit(), chopped.toString());
        assertTrue(Files.isRegularFile(out.resolve("last-chop.safetensors")), chopped.toString());
        assertTrue(Files.list(out.resolve("atlas")).anyMatch(p -> p.toString().endsWith(".png")));
        assertEquals(1, Files.list(out.resolve("more")).filter(p -> p.toString().endsWith(".png")).count());
    }


    @Tag("slow")
    @Test
    void fullDemoWritesEverythingAndReusesItsCache() throws Exception {
        Path out = tmp.resolve("demo");
        Cli.Run run = Cli.run("train", "--output_dir=" + out);
        assertEquals(0, run.exit(), run.toString());
        String stdout = run.out();
        assertTrue(stdout.contains("trained 24 steps"), stdout);
        assertTrue(stdout.contains("loss: mean of the first"), stdout);
        assertTrue(stdout.contains("a tiny random model"), stdout);
        for (String name : List.of("at-step00000008", "at-step00000016", "at-step00000024", "last")) {
            assertTrue(Files.isRegularFile(out.resolve(name + ".safetensors")), name);
            assertEquals(name.equals("last"), Files.isRegularFile(out.resolve(name + ".tenmin-state")), name);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("last.safetensors"))) {
            assertEquals("24", f.metadata().get("ss_steps"));
            assertEquals("library.optimizers.clybius.Compass", f.metadata().get("ss_optimizer"));
        }
        List<String> samples = Cli.listing(out.resolve("sample"));
        assertEquals(7, samples.size(), samples.toString()); // 3 rounds × 2 prompts + the montage
        assertTrue(samples.contains("montage.png"));
        assertTrue(Files.list(out.resolve("logs")).findAny().isPresent());

        Cli.Run again = Cli.run("train", "--output_dir=" + out, "--max_train_steps=1");
        assertEquals(0, again.exit(), again.toString());
        assertTrue(again.err().contains("latent cache (disk): 0 encoded, 8 reused"), again.toString());
    }
}
