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
        double[] training = split(r, "training ([0-9.]+) s: the loop's thread waited ([0-9.]+) s for the device at the"
                + " loss reads; optimizer steps ([0-9.]+) s");
        assertEquals(phase[2], training[0], 0.05, "training " + Arrays.toString(training));
        assertTrue(training[1] + training[2] <= training[0] + 0.1,
                "training's parts fit inside it: " + Arrays.toString(training));
        assertTrue(training[2] > 0, "two optimizer steps ran: " + Arrays.toString(training));
        // the saving phase's split: the writer waits and the resume state (the final save's) fit inside it
        double[] saving = split(r, "saving ([0-9.]+) s: waiting for the writer thread ([0-9.]+) s, resume states"
                + " ([0-9.]+) s, the rest \\(the values' copies, metadata\\) ([0-9.]+) s");
        assertEquals(phase[4], saving[0], 0.05, "saving " + Arrays.toString(saving));
        assertEquals(saving[0], saving[1] + saving[2] + saving[3], 0.15,
                "saving's parts add up to it: " + Arrays.toString(saving));
        assertTrue(saving[2] > 0, "the final save writes a resume state: " + Arrays.toString(saving));
        // the sampling phase's split: two rounds rendered, their parts add up to it
        double[] sampling = split(r, "sampling ([0-9.]+) s: merging the LoCon ([0-9.]+) s, rendering ([0-9.]+) s, PNG"
                + " files and TensorBoard ([0-9.]+) s, the rest \\(the montage\\) ([0-9.]+) s");
        assertEquals(phase[3], sampling[0], 0.05, "sampling " + Arrays.toString(sampling));
        assertEquals(sampling[0], sampling[1] + sampling[2] + sampling[3] + sampling[4], 0.25,
                "sampling's parts add up: " + Arrays.toString(sampling));
        assertTrue(sampling[2] > 0, "two rounds rendered: " + Arrays.toString(sampling));
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

    /** The numbers of the one output line of {@code r} that matches {@code pattern} (stripped), in order. */
    private static double[] split(Cli.Run r, String pattern) {
        java.util.regex.Pattern p = java.util.regex.Pattern.compile(pattern);
        java.util.regex.Matcher m = r.out().lines().map(l -> p.matcher(l.strip())).filter(java.util.regex.Matcher::matches)
                .findFirst().orElseThrow(() -> new AssertionError("no line matches " + pattern + " in " + r));
        double[] out = new double[m.groupCount()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Double.parseDouble(m.group(i + 1));
        }
        return out;
    }
}
