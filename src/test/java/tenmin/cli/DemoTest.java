package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
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
    void demoPathRunsOneStep() {
        Path out = tmp.resolve("demo");
        Cli.Run run = Cli.run("train", "--output_dir=" + out, "--max_train_steps=1", "--save_every_n_steps=100",
                "--sample_every_n_steps=100", "--cpu_threads=2");
        assertEquals(0, run.exit(), run.toString());
        assertTrue(run.err().contains("built-in demo: a tiny SDXL-shaped model with RANDOM weights"), run.toString());
        assertTrue(run.out().contains("trained 1 steps; final LoRA " + out.resolve("last.safetensors")), run.toString());
        assertTrue(Files.isRegularFile(out.resolve("last.safetensors")));
        assertTrue(Files.isDirectory(out.resolve("dataset").resolve("4_ohwx shapes")));
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
