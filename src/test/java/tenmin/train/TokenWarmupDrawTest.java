package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.testing.TrainRuns;
import tenmin.train.data.EpochPlanner;
import tenmin.train.noise.DdpmSchedule;

/**
 * The token warm-up as the loop draws it: each micro-batch's captions see the optimizer steps taken before it (the
 * same for every micro-batch of an accumulation window), so a micro-batch drawn again (resume) has the same
 * captions; the warm-up flags are part of the recipe a resumed run must match.
 */
class TokenWarmupDrawTest {
    private static CpuBackend backend;
    private static Scope root;
    private static SdxlModels models;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        root = Scope.root(backend, "test");
        models = SdxlModels.random(SdxlConfig.tiny(), root, SdxlDtypes.fp32(), 11);
    }

    @AfterAll
    static void stop() {
        models.close();
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
        backend.close();
    }

    @Test
    void eachMicroBatchSeesTheStepsBeforeIt() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 3, Color.BLUE, "a, b, c, d, e, f, g, h, i");
        // 3 images, batch 1, accumulation 2: micro-batches 0, 1 | 2 in each epoch, 2 optimizer steps per epoch
        TrainConfig cfg = TrainRuns.config(data, tmp.resolve("out"), "--train_batch_size=1",
                "--gradient_accumulation_steps=2", "--max_train_steps=10", "--token_warmup_min=1",
                "--token_warmup_step=4");
        TrainingData td = TrainingData.prepare(cfg, data, 32, Reporter.SILENT);
        LatentCache cache = LatentCache.build(td, models.vae(), models.dtypes().vae(), root, LatentCache.Mode.MEMORY,
                true, 7, 8, Reporter.SILENT.progress("", 0));
        EpochPlanner planner = td.planner();
        assertEquals(3, planner.microBatchesPerEpoch());
        // steps before (epoch, micro-batch): (0,0) 0, (0,1) 0, (0,2) 1, (1,0) 2, (1,1) 2, (1,2) 3, (2,0) 4;
        // 9 movable tags, min 1, T 4: ⌊step · 8 / 4⌋ + 1 = 1, 1, 3, 5, 5, 7, then all 9
        int[][] at = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}, {2, 0}};
        int[] tags = {1, 1, 3, 5, 5, 7, 9};
        List<String> all = List.of("a", "b", "c", "d", "e", "f", "g", "h", "i");
        for (int j = 0; j < at.length; j++) {
            BatchInputs in = draw(cfg, td, cache, at[j][0], at[j][1]);
            List<String> got = new ArrayList<>(List.of(in.captions().get(0).split(", ")));
            Collections.sort(got);
            // the first tags of the caption, shuffled (--shuffle_caption of TrainRuns)
            assertEquals(all.subList(0, tags[j]), got, "epoch " + at[j][0] + " micro-batch " + at[j][1]);
        }
        // drawn again, as a resumed run draws it: the same inputs
        BatchInputs first = draw(cfg, td, cache, 1, 2);
        BatchInputs again = draw(cfg, td, cache, 1, 2);
        assertEquals(first.captions(), again.captions());
        assertArrayEquals(first.noisy(), again.noisy());
    }

    private static BatchInputs draw(TrainConfig cfg, TrainingData td, LatentCache cache, int epoch, int index) {
        List<EpochPlanner.MicroBatch> plan = td.planner().plan(epoch);
        return BatchInputs.draw(cfg, td, cache, null, null, DdpmSchedule.sdxl(), epoch, index, plan.get(index),
                td.planner().drawRng(epoch, index));
    }

    @Test
    void warmupFlagsArePartOfTheRecipe() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 1, Color.BLUE, "a, b");
        TrainConfig plain = TrainRuns.config(data, tmp.resolve("out"));
        TrainConfig min = TrainRuns.config(data, tmp.resolve("out"), "--token_warmup_min=2");
        TrainConfig step = TrainRuns.config(data, tmp.resolve("out"), "--token_warmup_step=10");
        TrainConfig rules = TrainRuns.config(data, tmp.resolve("out"), "--lr_scheduler=piecewise_constant",
                "--lr_scheduler_args", "step_rules=1:2,0.5");
        String digest = Resume.digest(plain.flags());
        assertNotEquals(digest, Resume.digest(min.flags()));
        assertNotEquals(digest, Resume.digest(step.flags()));
        assertNotEquals(digest, Resume.digest(rules.flags()));
        assertNotEquals(Resume.digest(rules.flags()), Resume.digest(TrainRuns.config(data, tmp.resolve("out"),
                "--lr_scheduler=piecewise_constant", "--lr_scheduler_args", "step_rules=1:3,0.5").flags()));
    }
}
