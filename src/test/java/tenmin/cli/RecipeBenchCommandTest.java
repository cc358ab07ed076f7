package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;

/**
 * {@code tenmin bench recipe}: the guide's command line runs on a generated dataset and a random model, every
 * phase is reported and the phases add up to the total; the outputs are the guide's (a save per step, samples,
 * a final LoRA with its resume state). Bad options are usage errors that write nothing.
 */
class RecipeBenchCommandTest {
    @TempDir
    Path tmp;

    @Test
    void runsTheGuidesRecipeAndReportsEveryPhase() throws Exception {
        Path work = tmp.resolve("work");
        Cli.Run r = Cli.run("bench", "recipe", "--size", "tiny", "--images", "2", "--resolution", "64", "--device", "cpu",
                "--max_train_steps", "2", "--sample_every_n_steps", "1", "--sample_steps", "2", "--work", work.toString());
        assertEquals(0, r.exit(), r.toString());
        String row = r.out().lines().filter(l -> l.startsWith("| cpu backend")).findFirst().orElseThrow(() ->
                new AssertionError(r.toString()));
        // | device | model | images | steps | setup | caching | training | sampling | saving | total | s / micro-batch |
        List<String> cells = Arrays.stream(row.split("\\|")).map(String::trim).filter(c -> !c.isEmpty()).toList();
        assertEquals(List.of("tiny", "2 at 64²", "2"), cells.subList(1, 4), row);
        double[] phase = cells.subList(4, 10).stream().mapToDouble(Double::parseDouble).toArray();
        for (int i = 0; i < 5; i++) {
            assertTrue(phase[i] > 0, "phase " + i + " of " + row);
        }
        double sum = phase[0] + phase[1] + phase[2] + phase[3] + phase[4];
        assertTrue(Math.abs(sum - phase[5]) <= 0.3, "phases add up to the total: " + row);
        // the training phase's split: the loss reads' waits and the optimizer steps fit inside it
        String split = r.out().lines().filter(l -> l.contains("waited")).findFirst().orElseThrow(() ->
                new AssertionError(r.toString()));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("training ([0-9.]+) s: the loop's thread waited"
                + " ([0-9.]+) s for the device at the loss reads; optimizer steps ([0-9.]+) s").matcher(split.strip());
        assertTrue(m.matches(), split);
        double training = Double.parseDouble(m.group(1));
        assertEquals(phase[2], training, 0.05, split);
        assertTrue(Double.parseDouble(m.group(2)) + Double.parseDouble(m.group(3)) <= training + 0.1, split);
        assertTrue(Double.parseDouble(m.group(3)) > 0, "two optimizer steps ran: " + split);
        // the saving phase's split: the writer waits and the resume state (the final save's) fit inside it
        String saving = r.out().lines().filter(l -> l.contains("waiting for the writer")).findFirst().orElseThrow(() ->
                new AssertionError(r.toString()));
        java.util.regex.Matcher s = java.util.regex.Pattern.compile("saving ([0-9.]+) s: waiting for the writer thread"
                + " ([0-9.]+) s, resume states ([0-9.]+) s, the rest \\(the values' copies, metadata\\) ([0-9.]+) s")
                .matcher(saving.strip());
        assertTrue(s.matches(), saving);
        assertEquals(phase[4], Double.parseDouble(s.group(1)), 0.05, saving);
        assertEquals(Double.parseDouble(s.group(1)), Double.parseDouble(s.group(2)) + Double.parseDouble(s.group(3))
                + Double.parseDouble(s.group(4)), 0.15, saving);
        assertTrue(Double.parseDouble(s.group(3)) > 0, "the final save writes a resume state: " + saving);
        // the sampling phase's split: two rounds rendered, their parts fit inside it
        String sampling = r.out().lines().filter(l -> l.contains("merging the LoCon")).findFirst().orElseThrow(() ->
                new AssertionError(r.toString()));
        java.util.regex.Matcher q = java.util.regex.Pattern.compile("sampling ([0-9.]+) s: merging the LoCon ([0-9.]+) s,"
                + " rendering ([0-9.]+) s, PNG files and TensorBoard ([0-9.]+) s, the rest \\(the montage\\) ([0-9.]+) s")
                .matcher(sampling.strip());
        assertTrue(q.matches(), sampling);
        assertEquals(phase[3], Double.parseDouble(q.group(1)), 0.05, sampling);
        assertEquals(Double.parseDouble(q.group(1)), Double.parseDouble(q.group(2)) + Double.parseDouble(q.group(3))
                + Double.parseDouble(q.group(4)) + Double.parseDouble(q.group(5)), 0.25, sampling);
        assertTrue(Double.parseDouble(q.group(3)) > 0, "two rounds rendered: " + sampling);
        Path out = work.resolve("output");
        for (String name : List.of("yifftoolkit-schnell-step00000001", "yifftoolkit-schnell-step00000002",
                "yifftoolkit-schnell")) {
            assertTrue(Files.isRegularFile(out.resolve(name + ".safetensors")), name);
        }
        assertTrue(Files.isRegularFile(out.resolve("yifftoolkit-schnell.tenmin-state")));
        assertTrue(!Files.exists(out.resolve("yifftoolkit-schnell-step00000001.tenmin-state")),
                "the guide gives no --save_state: step saves carry no resume state");
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("yifftoolkit-schnell.safetensors"))) {
            assertEquals("2", f.metadata().get("ss_steps"));
            assertEquals("None", f.metadata().get("ss_new_sd_model_hash"));
        }
        try (var samples = Files.list(out.resolve("sample"))) {
            assertTrue(samples.anyMatch(p -> p.getFileName().toString().endsWith(".png")), "samples were rendered");
        }
    }

    @Test
    void badOptionsAreUsageErrors() {
        Path work = tmp.resolve("never");
        Cli.Run size = Cli.run("bench", "recipe", "--size", "huge", "--work", work.toString());
        assertEquals(2, size.exit(), size.toString());
        assertTrue(size.err().contains("huge"), size.toString());
        Cli.Run reso = Cli.run("bench", "recipe", "--size", "tiny", "--resolution", "100", "--work", work.toString());
        assertEquals(2, reso.exit(), reso.toString());
        assertTrue(reso.err().contains("--resolution 100"), reso.toString());
        Cli.Run images = Cli.run("bench", "recipe", "--images", "0", "--work", work.toString());
        assertEquals(2, images.exit(), images.toString());
        assertTrue(!Files.exists(work), "nothing written");
    }
}
