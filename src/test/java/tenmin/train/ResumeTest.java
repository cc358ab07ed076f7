package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Cli;
import tenmin.testing.TrainRuns;
import tenmin.train.save.StateTensor;
import tenmin.train.save.TrainingState;
import tenmin.train.save.TrainingStateFile;

/**
 * {@code --resume} on the CPU backend: a run stopped in the middle of an accumulation window (as Ctrl-C
 * does) and continued from its saved state ends with exactly the weights, optimizer moments and loss
 * record of the run that was never interrupted, and so does a run resumed from an ordinary step save.
 */
class ResumeTest {
    @TempDir
    static Path tmp;
    static Path data;
    static Path straight;

    /** 4 images × 2 repeats, batch 2: 4 micro-batches per epoch, accumulation 2: 2 steps per epoch; 6 steps. */
    @BeforeAll
    static void uninterrupted() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.RED, "ohwx, red disc, white background");
        straight = tmp.resolve("straight");
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, straight, "--save_state"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertEquals(6, r.steps());
    }

    /** Stops the trainer after the {@code n}-th micro-batch (its progress line is written once per micro-batch). */
    static Reporter stopAfterMicroBatch(Trainer[] trainer, int n) {
        return new Reporter() {
            private int microBatches;

            @Override
            public void log(Level level, String line) {
            }

            @Override
            public boolean enabled(Level level) {
                return false;
            }

            @Override
            public Progress progress(String label, long total) {
                return new Progress() {
                    @Override
                    public void advance(long units) {
                    }

                    @Override
                    public void status(String text) {
                        if (++microBatches == n) {
                            trainer[0].requestStop();
                        }
                    }

                    @Override
                    public void close() {
                    }
                };
            }
        };
    }

    @Test
    void stoppedMidWindowThenResumedEqualsTheUninterruptedRun() throws Exception {
        Path out = tmp.resolve("stopped");
        Trainer[] holder = new Trainer[1];
        // micro-batch 7 is the first of step 4's window: the stop keeps step 3 and replays micro-batch 7 on resume
        Trainer.Result stopped = TrainRuns.train(holder, TrainRuns.config(data, out), stopAfterMicroBatch(holder, 7));
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        assertEquals(3, stopped.steps());
        assertEquals(out.resolve("at-step00000003.safetensors"), stopped.lastLora());
        assertFalse(Files.exists(out.resolve("last.safetensors")));
        assertTrue(stopped.message().contains("--resume"), stopped.message());
        TrainingState at3 = TrainingStateFile.read(stopped.lastState());
        assertEquals(3, at3.globalStep());
        assertEquals(1, at3.epoch());
        assertEquals(2, at3.batchInEpoch());

        Trainer.Result resumed = TrainRuns.train(TrainRuns.config(data, out, "--resume=" + stopped.lastState(),
                "--save_state"),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        assertEquals(6, resumed.steps());
        // micro-batches 7..12 ran again after the resume
        assertEquals(6, resumed.losses().size());
        assertSameRun(straight, out, "last");
        assertSameRun(straight, out, "at-step00000006");
    }

    @Test
    void resumedFromAStepSaveEqualsTheUninterruptedRun() throws Exception {
        Path out = tmp.resolve("from4");
        Trainer.Result r = resumedFrom("at-step00000004.tenmin-state", out);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertEquals(4, r.losses().size());
        assertSameRun(straight, out, "last");
    }

    /**
     * Sample images draw their noise from generators of their own (kohya saves and restores the global RNG
     * around sampling): a run that samples every 2 steps, resumed from a save, ends exactly as the straight run.
     */
    @Test
    void samplingBetweenStepsLeavesTheRunUnchanged() throws Exception {
        Path prompts = tmp.resolve("sampling-prompts.txt");
        Files.writeString(prompts, "ohwx, red disc --n blurry --w 64 --h 64 --s 2\n(ohwx:1.2) disc --w 64 --h 64 --s 2 --l 1\n");
        Path out = tmp.resolve("sampling");
        Trainer.Result r = resumedFrom("at-step00000002.tenmin-state", out, "--sample_prompts=" + prompts,
                "--sample_every_n_steps=2");
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        List<String> samples = Cli.listing(out.resolve("sample"));
        assertEquals(5, samples.size(), "two rounds (steps 4 and 6) of two prompts and the montage: " + samples);
        assertSameRun(straight, out, "last");
    }

    @Test
    void resumeRefusesAnotherRecipeNamingTheFlags() {
        Path state = straight.resolve("at-step00000002.tenmin-state");
        InputException e = assertThrows(InputException.class, () -> TrainRuns.train(TrainRuns.config(data,
                tmp.resolve("other"), "--resume=" + state, "--unet_lr=0.002"), Reporter.SILENT));
        assertTrue(e.getMessage().contains("--unet_lr was 0.001, now 0.002"), e.getMessage());
        InputException seed = assertThrows(InputException.class, () -> TrainRuns.train(TrainRuns.config(data,
                tmp.resolve("other"), "--resume=" + state, "--seed=8"), Reporter.SILENT));
        assertTrue(seed.getMessage().contains("--seed 8"), seed.getMessage());
        // saving and sampling cadences are not part of the recipe
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("cadence"), "--resume=" + state,
                "--save_every_n_steps=3", "--save_precision=bf16"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
    }

    /**
     * Copies the straight run's {@code state} file into the new folder {@code out} and resumes from the folder
     * (its newest state) with the recipe and {@code extra} flags.
     */
    private static Trainer.Result resumedFrom(String state, Path out, String... extra) throws IOException {
        Files.createDirectories(out);
        Files.copy(straight.resolve(state), out.resolve(state));
        List<String> flags = new ArrayList<>(List.of("--resume=" + out));
        flags.addAll(List.of(extra));
        return TrainRuns.train(TrainRuns.config(data, out, flags.toArray(String[]::new)), Reporter.SILENT);
    }

    /** Same LoRA tensors (bytes) and same state (weights, optimizer moments and steps, loss record, position). */
    private static void assertSameRun(Path expectedDir, Path actualDir, String stem) {
        try (SafetensorsFile a = SafetensorsFile.open(expectedDir.resolve(stem + ".safetensors"));
             SafetensorsFile b = SafetensorsFile.open(actualDir.resolve(stem + ".safetensors"))) {
            assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                assertArrayEquals(a.readFloats(key), b.readFloats(key), stem + " " + key);
            }
        }
        TrainingState x = TrainingStateFile.read(expectedDir.resolve(stem + ".tenmin-state"));
        TrainingState y = TrainingStateFile.read(actualDir.resolve(stem + ".tenmin-state"));
        assertEquals(x.globalStep(), y.globalStep());
        assertEquals(x.epoch(), y.epoch());
        assertEquals(x.batchInEpoch(), y.batchInEpoch());
        assertEquals(x.lora().size(), y.lora().size());
        for (int i = 0; i < x.lora().size(); i++) {
            StateTensor s = x.lora().get(i);
            assertEquals(s.name(), y.lora().get(i).name());
            assertArrayEquals(s.values(), y.lora().get(i).values(), stem + " state " + s.name());
        }
        assertEquals(x.optimizer().steps(), y.optimizer().steps());
        for (Map.Entry<String, float[]> e : x.optimizer().tensors().entrySet()) {
            assertArrayEquals(e.getValue(), y.optimizer().tensors().get(e.getKey()), stem + " optimizer " + e.getKey());
        }
        assertArrayEquals(x.lossRecord(), y.lossRecord(), stem + " loss record");
        assertEquals(x.lossTotal(), y.lossTotal());
        assertTrue(List.of("last", "at-step00000006").contains(stem));
    }
}
