package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.core.WithProperty;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Numerics;
import tenmin.testing.TorchBackendTests;
import tenmin.testing.TrainRuns;
import tenmin.train.optim.DeviceClybW;

/**
 * The recipe's loop with the optimizer step on the device (torch backend, CPU libtorch): it says so, ends where
 * the same run with the host optimizer ends (to float rounding), and a run stopped mid-window and resumed from its
 * training state (moments exported from the device, imported back) ends where the uninterrupted run does.
 */
@Tag("torch")
class DeviceOptimizerTrainingTest extends TorchBackendTests {
    @TempDir
    Path tmp;

    private static final String[] FLAGS = {"--max_train_steps=3", "--save_every_n_steps=100", "--save_precision=float"};

    private Trainer.Result run(Path data, Path out, boolean onDevice, Reporter reporter, Trainer[] holder,
                               String... extra) {
        List<String> flags = new ArrayList<>(List.of(FLAGS));
        flags.addAll(List.of(extra));
        return WithProperty.with(DeviceClybW.PROPERTY, onDevice ? "1" : "0",
                () -> TrainRuns.train(holder, TrainRuns.config(data, out, flags.toArray(String[]::new)), reporter, torch));
    }

    @Test
    void deviceStepMatchesTheHostStepAndResumes() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 4, Color.RED, "ohwx, red disc");
        List<String> lines = new ArrayList<>();
        Reporter recording = new Reporter() {
            @Override
            public void log(Level level, String line) {
                lines.add(line);
            }

            @Override
            public boolean enabled(Level level) {
                return level != Level.DEBUG;
            }

            @Override
            public Progress progress(String label, long total) {
                return Reporter.SILENT.progress(label, total);
            }
        };
        Trainer.Result device;
        Checkpoints.writeDelayMillisForTests = 1500; // each step's values are downloaded after the next steps ran
        try {
            device = run(data, tmp.resolve("device"), true, recording, new Trainer[1], "--save_every_n_steps=1");
        } finally {
            Checkpoints.writeDelayMillisForTests = 0;
        }
        assertEquals(Trainer.Outcome.COMPLETED, device.outcome(), device.message());
        assertTrue(lines.stream().anyMatch(l -> l.contains("the optimizer steps on the device")), String.join("\n", lines));
        Trainer.Result host = run(data, tmp.resolve("host"), false, Reporter.SILENT, new Trainer[1]);
        assertEquals(3, host.steps());
        assertEquals(host.losses().size(), device.losses().size());
        for (int i = 0; i < host.losses().size(); i++) {
            assertEquals(host.losses().get(i), device.losses().get(i), 1e-4 * host.losses().get(i), "loss " + i);
        }
        // The weights are compared after one step only: from the second on, some LoCon rows of this tiny model get
        // gradients of ~1e-11 (rounding noise of the time-embedding path), which ClybW's per-row normalisation turns
        // into +-1 updates, so float-rounding differences between the two optimizers decide them.
        Trainer.Result deviceOne = run(data, tmp.resolve("device1"), true, Reporter.SILENT, new Trainer[1],
                "--max_train_steps=1");
        Trainer.Result hostOne = run(data, tmp.resolve("host1"), false, Reporter.SILENT, new Trainer[1],
                "--max_train_steps=1");
        assertSameLora(hostOne.lastLora(), deviceOne.lastLora(), 1e-5);
        // the step saves of the 3-step run copy the weights of their own step straight from the device (packed there
        // at the save, downloaded by the writer thread after the next optimizer steps changed the parameters)
        Path step1 = tmp.resolve("device").resolve(tenmin.train.save.OutputNames.step(null, 1));
        assertSameLora(deviceOne.lastLora(), step1, 0);

        // 2 micro-batches per step: stopping after the 3rd keeps step 1 and replays the 3rd on resume
        Path out = tmp.resolve("stopped");
        Trainer[] holder = new Trainer[1];
        Trainer.Result stopped = run(data, out, true, ResumeTest.stopAfterMicroBatch(holder, 3), holder);
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        assertEquals(1, stopped.steps());
        Trainer.Result resumed = run(data, out, true, Reporter.SILENT, new Trainer[1], "--resume=" + stopped.lastState());
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        assertEquals(3, resumed.steps());
        assertSameLora(device.lastLora(), resumed.lastLora(), 1e-6);
    }

    private static void assertSameLora(Path expected, Path actual, double rel) {
        try (SafetensorsFile a = SafetensorsFile.open(expected);
             SafetensorsFile b = SafetensorsFile.open(actual)) {
            assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                Numerics.assertClose(key, a.info(key).shape(), a.readFloats(key), b.readFloats(key), 1e-7, rel);
            }
        }
    }
}
