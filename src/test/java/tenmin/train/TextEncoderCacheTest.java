package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.LogLines;
import tenmin.testing.TrainRuns;

/**
 * {@code --cache_text_encoder_outputs}: with frozen text encoders and fixed captions, a run that encodes every
 * caption once is the run that encodes them at every micro-batch (same losses, same weights, bit for bit on the
 * CPU backend); what the reference refuses is refused.
 */
class TextEncoderCacheTest {
    @TempDir
    Path tmp;

    private List<String> args(Path data, String out, String... extra) {
        List<String> a = new ArrayList<>(TrainRuns.args(data, tmp.resolve(out), extra));
        a.remove("--shuffle_caption");
        return a;
    }

    @Test
    void cachedOutputsTrainAsEncodingEveryStep() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 3, Color.RED, "ohwx, red disc, white background");
        TrainRuns.squares(data, "1_square", 2, Color.BLUE, Color.WHITE, "a blue square");
        String[] common = {"--network_train_unet_only", "--max_train_steps=3", "--max_token_length=225",
                "--save_precision=float", "--caption_prefix=photo of"};
        Trainer.Result live = TrainRuns.train(TrainTestConfigs.parse(args(data, "live", common)), Reporter.SILENT);
        List<String> cachedArgs = args(data, "cached", common);
        cachedArgs.add("--cache_text_encoder_outputs");
        LogLines log = new LogLines();
        Trainer.Result cached = TrainRuns.train(TrainTestConfigs.parse(cachedArgs), log);
        assertEquals(Trainer.Outcome.COMPLETED, live.outcome(), live.message());
        assertEquals(Trainer.Outcome.COMPLETED, cached.outcome(), cached.message());
        assertEquals(1, log.count("INFO", "text encoder outputs cached: 5 captions"), String.join("\n", log.lines()));
        assertEquals(live.losses(), cached.losses());
        try (SafetensorsFile a = SafetensorsFile.open(live.lastLora()); SafetensorsFile b = SafetensorsFile.open(cached.lastLora())) {
            assertEquals(a.names(), b.names());
            assertTrue(a.names().stream().allMatch(k -> k.startsWith("lora_unet_")));
            for (String k : a.names()) {
                assertArrayEquals(a.readFloats(k), b.readFloats(k), k);
            }
        }
    }

    @Test
    void whatTheReferenceRefusesIsRefused() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 1, Color.RED, "ohwx");
        InputException trained = assertThrows(InputException.class, () -> TrainTestConfigs.parse(args(data, "x",
                "--cache_text_encoder_outputs")));
        assertTrue(trained.getMessage().contains("--network_train_unet_only"), trained.getMessage());
        InputException shuffled = assertThrows(InputException.class, () -> TrainTestConfigs.parse(args(data, "x",
                "--cache_text_encoder_outputs_to_disk", "--network_train_unet_only", "--shuffle_caption")));
        assertTrue(shuffled.getMessage().contains("--cache_text_encoder_outputs_to_disk")
                && shuffled.getMessage().contains("shuffle_caption"), shuffled.getMessage());
    }
}
