package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;
import tenmin.testing.TrainRuns;

/**
 * kohya's save and sample cadences: step saves with {@code --save_last_n_steps} rotation
 * ({@code get_remove_step_no}: after step s the save of step s − n − 1 goes), epoch saves before the last
 * epoch ({@code <name>-000001}), epoch samples ({@code e000001}) which replace the step cadence when both are
 * given, samples before training (epoch 0 in the reference's call: {@code e000000}).
 */
class SaveCadenceTest {
    @TempDir
    Path tmp;

    /**
     * {@code --save_last_n_steps_state} / {@code --save_last_n_epochs_state} rotate the resume states with their own N
     * (the reference's {@code save_and_remove_state_stepwise} / {@code _on_epoch_end}), the LoRA files with theirs.
     */
    @Test
    void statesRotateWithTheirOwnCounts() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Path out = tmp.resolve("out");
        // 2 steps per epoch, 6 steps: after step s the LoRA of s − 3 − 1 and the state of s − 1 − 1 go
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, out, "--save_every_n_steps=1", "--save_last_n_steps=3",
                "--save_last_n_steps_state=1", "--save_every_n_epochs=1", "--save_last_n_epochs_state=1",
                "--save_state"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        List<String> loras = Cli.listing(out).stream().filter(n -> n.endsWith(".safetensors")).toList();
        assertEquals(List.of("at-step00000003.safetensors", "at-step00000004.safetensors", "at-step00000005.safetensors",
                "at-step00000006.safetensors", "epoch-000001.safetensors", "epoch-000002.safetensors",
                "last.safetensors"), loras);
        List<String> states = Cli.listing(out).stream().filter(n -> n.endsWith(".tenmin-state")).toList();
        assertEquals(List.of("at-step00000005.tenmin-state", "at-step00000006.tenmin-state",
                "epoch-000002.tenmin-state", "last.tenmin-state"), states);
    }

    @Test
    void stepAndEpochCadences() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Path prompts = Files.writeString(tmp.resolve("p.txt"), "ohwx --w 64 --h 64 --s 2 --l 1 --d 3\n");
        Path out = tmp.resolve("out");
        // 8 entries, batch 2, accumulation 2: 2 steps per epoch; 6 steps = 3 epochs
        Trainer.Result r;
        Checkpoints.writeDelayMillisForTests = 1500; // each LoRA file is written while the next steps run
        try {
            r = TrainRuns.train(TrainRuns.config(data, out, "--save_every_n_steps=1", "--save_last_n_steps=2",
                    "--save_precision=float", "--save_every_n_epochs=1", "--save_state", "--sample_prompts=" + prompts,
                    "--sample_every_n_epochs=1", "--sample_every_n_steps=1", "--sample_at_first"), Reporter.SILENT);
        } finally {
            Checkpoints.writeDelayMillisForTests = 0;
        }
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertTrue(Cli.listing(out).stream().noneMatch(n -> n.startsWith(".")), "no temporary file left: "
                + Cli.listing(out));
        List<String> files = Cli.listing(out).stream().filter(n -> n.endsWith(".safetensors")).toList();
        assertEquals(List.of("at-step00000004.safetensors", "at-step00000005.safetensors", "at-step00000006.safetensors",
                "epoch-000001.safetensors", "epoch-000002.safetensors", "last.safetensors"), files);
        assertTrue(Files.exists(out.resolve("epoch-000002.tenmin-state")));
        assertTrue(!Files.exists(out.resolve("at-step00000003.tenmin-state")), "rotated saves take their state along");
        try (SafetensorsFile e1 = SafetensorsFile.open(out.resolve("epoch-000001.safetensors"))) {
            assertEquals("1", e1.metadata().get("ss_epoch"));
            assertEquals("2", e1.metadata().get("ss_steps"));
        }
        // LoRA files are written by a background thread from a copy taken at the save: each step file holds
        // exactly the weights its state (written in the training thread at that step) holds, although the
        // next optimizer step changed them while the file was being written
        for (String step : List.of("at-step00000004", "at-step00000005", "at-step00000006")) {
            sameWeights(out.resolve(step + ".safetensors"), out.resolve(step + ".tenmin-state"));
        }
        List<String> samples = Cli.listing(out.resolve("sample"));
        assertEquals(5, samples.size(), samples.toString()); // 4 rounds and the montage; no step samples
        assertTrue(samples.contains("montage.png"), samples.toString());
        for (String label : List.of("e000000_00_", "e000001_00_", "e000002_00_", "e000003_00_")) {
            assertTrue(samples.stream().anyMatch(s -> s.startsWith(label) && s.endsWith("_3.png")), label + " in " + samples);
        }
    }

    /**
     * {@code --save_last_n_epochs} (kohya's {@code get_remove_epoch_no}: after epoch e the save of
     * e − every · n goes) and {@code --save_n_epoch_ratio} (every ⌊epochs / ratio⌋ epochs, at least 1).
     */
    @Test
    void epochSavesRotateAndFollowTheRatio() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 2, Color.RED, "ohwx, red disc");
        // 2 entries, batch 2, accumulation 1: 1 step per epoch; 6 epochs
        Path out = tmp.resolve("rotate");
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, out, "--gradient_accumulation_steps=1",
                "--max_train_epochs=6", "--save_every_n_steps=100", "--save_every_n_epochs=1", "--save_last_n_epochs=2",
                "--save_state"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertEquals(List.of("epoch-000004.safetensors", "epoch-000005.safetensors", "last.safetensors"),
                Cli.listing(out).stream().filter(n -> n.endsWith(".safetensors")).toList());
        assertTrue(!Files.exists(out.resolve("epoch-000003.tenmin-state")), "rotated saves take their state along");
        Path ratio = tmp.resolve("ratio");
        r = TrainRuns.train(TrainRuns.config(data, ratio, "--gradient_accumulation_steps=1", "--max_train_epochs=6",
                "--save_every_n_steps=100", "--save_every_n_epochs=5", "--save_n_epoch_ratio=3"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        // every ⌊6 / 3⌋ = 2 epochs, before the last; the ratio replaces --save_every_n_epochs
        assertEquals(List.of("epoch-000002.safetensors", "epoch-000004.safetensors", "last.safetensors"),
                Cli.listing(ratio).stream().filter(n -> n.endsWith(".safetensors")).toList());
    }

    private static void sameWeights(Path lora, Path state) {
        tenmin.train.save.TrainingState st = tenmin.train.save.TrainingStateFile.read(state);
        try (SafetensorsFile f = SafetensorsFile.open(lora)) {
            assertTrue(st.lora().size() > 0);
            for (tenmin.train.save.StateTensor t : st.lora()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(t.values(), f.readFloats(t.name()), lora + " " + t.name());
            }
        }
    }
}
