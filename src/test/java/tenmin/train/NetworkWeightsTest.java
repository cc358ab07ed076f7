package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.LogLines;
import tenmin.testing.TrainRuns;

/**
 * {@code --network_weights}: a run starts from the weights of an existing LoCon file (LyCORIS's non-strict
 * load), and refuses one that does not fit this network, before any training.
 */
class NetworkWeightsTest {
    @TempDir
    static Path tmp;
    static Path data;
    /** A LoCon file trained for 2 steps (fp16, as the recipe saves). */
    static Path trained;

    @BeforeAll
    static void trainOne() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.RED, "ohwx, red disc, white background");
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("first"), "--max_train_steps=2"),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        trained = r.lastLora();
    }

    /**
     * With every learning rate 0 the optimizer leaves the parameters as they start, so the saved file (fp32) holds
     * exactly the loaded fp16 values: every tensor, text encoders and U-Net, and the file's alphas.
     */
    @Test
    void aRunStartsFromTheFilesWeights() {
        LogLines log = new LogLines();
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("continued"), "--network_weights=" + trained,
                "--unet_lr=0", "--text_encoder_lr=0", "--max_train_steps=1", "--save_precision=float",
                "--seed=99"), log);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        try (SafetensorsFile from = SafetensorsFile.open(trained); SafetensorsFile got = SafetensorsFile.open(r.lastLora())) {
            assertEquals(from.names(), got.names());
            int nonZeroUps = 0;
            for (String key : from.names()) {
                float[] want = from.readFloats(key);
                assertArrayEquals(want, got.readFloats(key), key);
                if (key.endsWith(".lora_up.weight") && java.util.Arrays.stream(box(want)).anyMatch(v -> v != 0)) {
                    nonZeroUps++;
                }
            }
            assertTrue(nonZeroUps > 10, "the first run trained its up matrices (else this would prove little): " + nonZeroUps);
        }
        assertEquals(1, log.count("INFO", "LoCon tensors loaded"), String.join("\n", log.lines()));
    }

    /** A U-Net-only run takes the file's U-Net tensors and says which of the file's tensors it left out. */
    @Test
    void unetOnlyLeavesTheTextEncoderTensorsUnread() {
        LogLines log = new LogLines();
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("unet-only"), "--network_weights=" + trained,
                "--network_train_unet_only", "--unet_lr=0", "--max_train_steps=1",
                "--save_precision=float"), log);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        String line = log.lines().stream().filter(l -> l.contains("LoCon tensors loaded")).findFirst().orElseThrow();
        assertTrue(line.contains("tensors of the file are not part of this network (lora_te1_"), line);
        try (SafetensorsFile from = SafetensorsFile.open(trained); SafetensorsFile got = SafetensorsFile.open(r.lastLora())) {
            assertFalse(got.names().isEmpty());
            for (String key : got.names()) {
                assertTrue(key.startsWith("lora_unet_"), key);
                assertArrayEquals(from.readFloats(key), got.readFloats(key), key);
            }
        }
    }

    /** {@code --dim_from_weights}: the file's ranks and alphas replace the command line's; the run then loads it. */
    @Test
    void ranksComeFromTheFile() {
        TrainConfig c = TrainRuns.config(data, tmp.resolve("from-weights"), "--network_weights=" + trained,
                "--dim_from_weights", "--network_dim=16", "--network_alpha=1", "--network_args", "preset=full",
                "conv_dim=2", "conv_alpha=1", "--unet_lr=0", "--text_encoder_lr=0", "--max_train_steps=1",
                "--save_precision=float");
        assertEquals(List.of(4, 2.0, 8, 4.0), List.of(c.network().dim(), c.network().alpha(), c.network().convDim(),
                c.network().convAlpha()));
        Trainer.Result r = TrainRuns.train(c, Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        try (SafetensorsFile from = SafetensorsFile.open(trained); SafetensorsFile got = SafetensorsFile.open(r.lastLora())) {
            for (String key : from.names()) {
                assertArrayEquals(from.readFloats(key), got.readFloats(key), key);
            }
        }
        InputException none = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("x"),
                "--dim_from_weights"));
        assertTrue(none.getMessage().contains("--network_weights"), none.getMessage());
    }

    /** A file whose linear modules have different ranks (a resized LoRA) cannot give one rank. */
    @Test
    void mixedRanksAreRefusedNamingTwoModules() throws Exception {
        tenmin.formats.SafetensorsWriter w = new tenmin.formats.SafetensorsWriter();
        w.addFloats("lora_unet_a.lora_down.weight", tenmin.formats.StDType.F32, new long[] {4, 8}, new float[32]);
        w.addFloats("lora_unet_b.lora_down.weight", tenmin.formats.StDType.F32, new long[] {8, 8}, new float[64]);
        Path mixed = tmp.resolve("mixed.safetensors");
        w.write(mixed);
        InputException e = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("x"),
                "--network_weights=" + mixed, "--dim_from_weights"));
        assertTrue(e.getMessage().startsWith(mixed.toString()) && e.getMessage().contains("lora_unet_a")
                && e.getMessage().contains("lora_unet_b"), e.getMessage());
    }

    @Test
    void aFileThatDoesNotFitIsRefusedNamingWhatDiffers() {
        InputException rank = refused("--network_dim=8");
        assertTrue(rank.getMessage().startsWith(trained.toString()), rank.getMessage());
        assertTrue(rank.getMessage().contains("(rank 4), this run's network has") && rank.getMessage().contains("--network_dim"),
                rank.getMessage());
        InputException alpha = refused("--network_alpha=1");
        assertTrue(alpha.getMessage().contains(".alpha is 2.0, this run's network_alpha is 1.0"), alpha.getMessage());
        InputException convAlpha = refused("--network_args", "preset=full", "conv_dim=8", "conv_alpha=2", "algo=locon");
        assertTrue(convAlpha.getMessage().contains("this run's conv_alpha is 2.0"), convAlpha.getMessage());
        InputException notLora = refused("--network_weights=" + TrainRuns.checkpoint());
        assertTrue(notLora.getMessage().contains("holds none of this network's"), notLora.getMessage());
        InputException missing = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("x"),
                "--network_weights=" + tmp.resolve("nope.safetensors")));
        assertTrue(missing.getMessage().contains("--network_weights"), missing.getMessage());
    }

    private static InputException refused(String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of("--network_weights=" + trained));
        a.addAll(List.of(extra));
        return assertThrows(InputException.class, () -> TrainRuns.train(TrainRuns.config(data, tmp.resolve("refused"),
                a.toArray(String[]::new)), Reporter.SILENT));
    }

    private static Float[] box(float[] a) {
        Float[] b = new Float[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[i];
        }
        return b;
    }
}
