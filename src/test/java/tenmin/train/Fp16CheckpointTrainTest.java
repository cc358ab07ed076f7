package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.Reporter;
import tenmin.formats.StDType;
import tenmin.testing.CheckpointCopies;
import tenmin.testing.TrainRuns;

/**
 * Training on an fp16 checkpoint with the cpu backend, whose frozen weights then stay in 16 bits (read-only,
 * converted exactly on every read): the run is bit for bit the run on an fp32 checkpoint holding the same
 * values, and nothing writes into the frozen weights.
 */
class Fp16CheckpointTrainTest {
    @TempDir
    Path tmp;

    private Trainer.Result train(Path checkpoint, Path data, String name) {
        List<String> args = new ArrayList<>(TrainRuns.args(data, tmp.resolve(name), "--max_train_steps=2"));
        args.removeIf(a -> a.startsWith("--pretrained_model_name_or_path="));
        args.add("--pretrained_model_name_or_path=" + checkpoint);
        return TrainRuns.train(TrainTestConfigs.parse(args), Reporter.SILENT);
    }

    @Test
    void sixteenBitWeightsTrainExactlyAsTheirFp32Copy() throws IOException {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 2, Color.RED, "ohwx, red disc");
        Path half = CheckpointCopies.copy(TrainRuns.checkpoint(), tmp.resolve("fp16.safetensors"), StDType.F16,
                Set.of(), Map.of());
        Path widened = CheckpointCopies.copy(half, tmp.resolve("fp32.safetensors"), StDType.F32, Set.of(), Map.of());
        Trainer.Result a = train(half, data, "half");
        Trainer.Result b = train(widened, data, "wide");
        assertEquals(Trainer.Outcome.COMPLETED, a.outcome(), a.message());
        assertEquals(Trainer.Outcome.COMPLETED, b.outcome(), b.message());
        assertEquals(b.losses(), a.losses(), "same losses, bit for bit");
    }
}
