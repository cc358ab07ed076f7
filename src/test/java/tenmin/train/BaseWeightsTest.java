package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.lora.BlockWeights;
import tenmin.testing.TrainRuns;
import tenmin.tools.Merge;
import tenmin.tools.MergeConfig;

/**
 * {@code --base_weights} / {@code --base_weights_multiplier}: a LoRA merged into the base model before training. A run
 * with it equals, loss for loss and weight for weight, the run on a checkpoint that {@code tenmin merge} baked the
 * same LoRA into at the same strength; multiplier 0 equals the plain run; bad arguments are one-line errors.
 */
class BaseWeightsTest {
    @TempDir
    static Path tmp;
    static Path data;
    static Path lora;

    @BeforeAll
    static void aLoraToMerge() {
        data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.GREEN, "ohwx, green disc");
        // a first LoRA, trained with a large rate so that merging it changes the model
        Trainer.Result first = TrainRuns.train(TrainRuns.config(data, tmp.resolve("first"), "--max_train_steps=2",
                "--optimizer_type=SGD", "--learning_rate=0.5", "--unet_lr=0.5", "--text_encoder_lr=0.5",
                "--save_precision=float"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, first.outcome(), first.message());
        lora = first.lastLora();
    }

    private static Trainer.Result train(String name, Path checkpoint, String... extra) {
        List<String> args = new java.util.ArrayList<>(TrainRuns.args(data, tmp.resolve(name), "--max_train_steps=2"));
        if (checkpoint != null) {
            args.add("--pretrained_model_name_or_path=" + checkpoint);
        }
        args.addAll(List.of(extra));
        Trainer.Result r = TrainRuns.train(TrainTestConfigs.parse(args), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        return r;
    }

    @Test
    void equalsTrainingOnTheCheckpointWithTheLoraBakedIn() {
        Path baked = tmp.resolve("baked.safetensors");
        Merge.run(new MergeConfig(TrainRuns.checkpoint(), List.of(new MergeConfig.LoraSpec(lora, 0.5)), null,
                BlockWeights.Options.defaults(), baked, false), Reporter.SILENT);
        Trainer.Result onBaked = train("on-baked", baked);
        Trainer.Result merged = train("merged", null, "--base_weights", lora.toString(), "--base_weights_multiplier",
                "0.5");
        assertEquals(onBaked.losses().size(), merged.losses().size());
        for (int i = 0; i < merged.losses().size(); i++) {
            assertEquals(onBaked.losses().get(i), merged.losses().get(i), 1e-6 * onBaked.losses().get(i), "loss " + i);
        }
        float[] a = TrainRuns.flat(onBaked.lastLora());
        float[] b = TrainRuns.flat(merged.lastLora());
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], 1e-3 * Math.abs(a[i]) + 1e-6, "LoRA value " + i);
        }
        Trainer.Result plain = train("plain", null);
        assertNotEquals(plain.losses(), merged.losses(), "the merged LoRA changes the model");
    }

    @Test
    void multiplierZeroIsThePlainRunAndMissingMultipliersAreOne() {
        Trainer.Result plain = train("plain0", null);
        Trainer.Result zero = train("zero", null, "--base_weights", lora.toString(), "--base_weights_multiplier", "0");
        assertEquals(plain.losses(), zero.losses());
        assertArrayEquals(TrainRuns.flat(plain.lastLora()), TrainRuns.flat(zero.lastLora()));
        TrainConfig two = TrainRuns.config(data, tmp.resolve("two"), "--base_weights", lora.toString(),
                lora.toString(), "--base_weights_multiplier", "0.25");
        assertEquals(0.25, two.paths().baseWeights().get(0).strength());
        assertEquals(1.0, two.paths().baseWeights().get(1).strength());
    }

    @Test
    void badArgumentsAreOneLineErrorsNamingThem() throws Exception {
        InputException missing = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("bad"),
                "--base_weights", tmp.resolve("nope.safetensors").toString()));
        assertTrue(missing.getMessage().contains("base_weights") && missing.getMessage().contains("nope.safetensors"),
                missing.getMessage());
        InputException extra = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("bad"),
                "--base_weights", lora.toString(), "--base_weights_multiplier", "1", "2"));
        assertTrue(extra.getMessage().contains("base_weights_multiplier"), extra.getMessage());
        InputException word = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("bad"),
                "--base_weights", lora.toString(), "--base_weights_multiplier", "half"));
        assertTrue(word.getMessage().contains("base_weights_multiplier"), word.getMessage());
        // not a LoRA: refused before anything is trained, naming the file
        Path notLora = tmp.resolve("not-a-lora.safetensors");
        new tenmin.formats.SafetensorsWriter().addFloats("x", tenmin.formats.StDType.F32, new long[] {1},
                new float[] {1}).write(notLora);
        Path out = tmp.resolve("bad-run");
        InputException e = assertThrows(InputException.class, () -> TrainRuns.train(TrainRuns.config(data, out,
                "--base_weights", notLora.toString()), Reporter.SILENT));
        assertTrue(e.getMessage().contains(notLora.toString()), e.getMessage());
    }
}
