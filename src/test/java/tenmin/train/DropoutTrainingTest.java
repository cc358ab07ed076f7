package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.core.WithProperty;
import tenmin.formats.SafetensorsFile;
import tenmin.lora.LoConDropout;
import tenmin.testing.TrainRuns;

/**
 * LyCORIS's dropouts in whole runs of the toy recipe ({@code --network_dropout}, {@code --network_args rank_dropout=
 * module_dropout=}): they change what is learned; the masks of a micro-batch come from its own key, so checkpointed
 * blocks, the text encoders' pipelined backward and a resumed run all give the uninterrupted, unchecked run's LoRA
 * bit for bit on the CPU backend; the metadata records them as kohya does.
 */
class DropoutTrainingTest {
    @TempDir
    static Path tmp;
    static Path data;
    static Trainer.Result straight;

    /** The toy recipe's network arguments with LyCORIS's rank and module dropout. */
    private static final String[] DROPOUTS = {"--network_dropout=0.1", "--network_args", "preset=full", "conv_dim=8",
            "conv_alpha=4", "algo=locon", "rank_dropout=0.25", "module_dropout=0.1"};

    private static String[] flags(String... extra) {
        List<String> all = new ArrayList<>(List.of(DROPOUTS));
        all.add("--max_train_steps=4");
        all.addAll(List.of(extra));
        return all.toArray(String[]::new);
    }

    @BeforeAll
    static void uninterrupted() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.RED, "ohwx, red disc, white background");
        straight = TrainRuns.train(TrainRuns.config(data, tmp.resolve("straight"), flags("--save_state")),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, straight.outcome(), straight.message());
    }

    @Test
    void parsedAsLycorisReadsThem() {
        TrainConfig c = TrainRuns.config(data, tmp.resolve("parsed"), flags());
        assertEquals(new LoConDropout(0.1, 0.25, 0.1), c.network().dropout());
        // --network_args dropout= wins over --network_dropout (kohya passes the flag only when the args lack one)
        TrainConfig own = TrainRuns.config(data, tmp.resolve("parsed"), "--network_dropout=0.1", "--network_args",
                "preset=full", "conv_dim=8", "conv_alpha=4", "dropout=0.3");
        assertEquals(new LoConDropout(0.3, 0, 0), own.network().dropout());
        assertEquals(LoConDropout.NONE, TrainRuns.config(data, tmp.resolve("parsed")).network().dropout());
    }

    @Test
    void outOfRangeProbabilitiesAreOneLineErrorsNamingTheArgument() {
        InputException e = assertThrows(InputException.class,
                () -> TrainRuns.config(data, tmp.resolve("bad"), "--network_dropout=1.5"));
        assertTrue(e.getMessage().contains("network_dropout"), e.getMessage());
        InputException r = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("bad"),
                "--network_args", "preset=full", "rank_dropout=-0.5"));
        assertTrue(r.getMessage().contains("rank_dropout"), r.getMessage());
        InputException nan = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("bad"),
                "--network_args", "preset=full", "module_dropout=often"));
        assertTrue(nan.getMessage().contains("module_dropout"), nan.getMessage());
    }

    @Test
    void dropoutChangesTheRunAndTheMetadataRecordsIt() {
        Trainer.Result plain = TrainRuns.train(TrainRuns.config(data, tmp.resolve("plain"), "--max_train_steps=4"),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, plain.outcome(), plain.message());
        assertEquals(plain.losses().size(), straight.losses().size());
        assertNotEquals(plain.losses(), straight.losses(), "masks change the losses");
        for (double loss : straight.losses()) {
            assertTrue(Double.isFinite(loss));
        }
        try (SafetensorsFile f = SafetensorsFile.open(straight.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals("0.1", m.get("ss_network_dropout"));
            String args = m.get("ss_network_args");
            assertTrue(args.contains("\"rank_dropout\": \"0.25\"") && args.contains("\"module_dropout\": \"0.1\"")
                    && args.contains("\"dropout\": 0.1"), args);
        }
    }

    @Test
    void checkpointedBlocksReplayTheMasksOfTheirForward() {
        // the U-Net's blocks and the text encoders' layers recomputed in the backward draw the forward's masks again
        Trainer.Result cp = TrainRuns.train(TrainRuns.config(data, tmp.resolve("cp"), flags("--gradient_checkpointing")),
                Reporter.SILENT);
        assertEquals(straight.losses(), cp.losses());
        TrainRuns.assertSameLora(straight.lastLora(), cp.lastLora());
    }

    @Test
    void theTextEncodersDrawTheSameWithTheirBackwardPipelinedOrNot() {
        Trainer.Result direct = WithProperty.with(Trainer.PIPELINE_PROPERTY, "0", () -> TrainRuns.train(
                TrainRuns.config(data, tmp.resolve("direct"), flags()), Reporter.SILENT));
        assertEquals(straight.losses(), direct.losses());
        TrainRuns.assertSameLora(straight.lastLora(), direct.lastLora());
    }

    @Test
    void aResumedRunDrawsTheMasksOfTheUninterruptedOne() {
        Path out = tmp.resolve("resumed");
        Trainer[] holder = new Trainer[1];
        Trainer.Result stopped = TrainRuns.train(holder, TrainRuns.config(data, out, flags()),
                ResumeTest.stopAfterMicroBatch(holder, 5));
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        assertFalse(stopped.lastState() == null);
        Trainer.Result resumed = TrainRuns.train(TrainRuns.config(data, out, flags("--resume=" + stopped.lastState())),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        TrainRuns.assertSameLora(straight.lastLora(), resumed.lastLora());
    }
}
