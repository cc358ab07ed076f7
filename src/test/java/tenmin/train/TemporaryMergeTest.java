package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.lora.LoConModule;
import tenmin.lora.TemporaryMerge;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.testing.Cli;
import tenmin.testing.Numerics;
import tenmin.testing.TrainRuns;

/**
 * The trained LoCon merged into copies of the weights for sampling ({@link TemporaryMerge}): the model's output is
 * the branch form's to float rounding while it is open, and exactly the branch form's again after it closes (the
 * original weights and modules back, the copies freed); a training run that samples with it merged ends with the
 * same LoRA as one that samples with branches.
 */
class TemporaryMergeTest {
    @TempDir
    Path tmp;

    private static float[] eps(SdxlModels models, Scope root, float[] latents) {
        try (Scope s = root.child("forward")) {
            Functional f = Functional.inference(s);
            SdxlModels.Conditioning c = models.condition(f, List.of("ohwx, a red disc"),
                    List.of(new int[] {64, 64, 0, 0, 64, 64}), PooledProjection.SAI, false);
            Tensor x = s.fromHost(latents, Shape.of(1, 4, 8, 8), DType.F32);
            return models.unet().forward(f, x, s.fromHost(new long[] {500}, 1), c.context(), c.y()).toHost();
        }
    }

    @Test
    void mergedOutputMatchesTheBranchesAndClosingRestoresThem() {
        try (CpuBackend backend = new CpuBackend(2);
             Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.load(TrainRuns.checkpoint(), SdxlConfig.tiny(), root, SdxlDtypes.fp32())) {
            Rng rng = new Rng(9);
            TrainableNetwork net = GradientAccumulationTest.nonZeroNetwork(models, root, rng);
            float[] latents = new float[4 * 8 * 8];
            rng.fillGaussian(latents);
            float[] branches = eps(models, root, latents);
            LoConModule first = net.network().modules().getFirst();
            Tensor weight = first.layer().weight();
            long live = backend.liveTensors();
            float[] merged;
            try (TemporaryMerge m = TemporaryMerge.open(net.network(), root)) {
                assertNotSame(weight, first.layer().weight(), "a merged copy is in place");
                assertNull(first.layer().adapter(), "no branch while merged");
                merged = eps(models, root, latents);
            }
            assertSame(weight, first.layer().weight());
            assertSame(first, first.layer().adapter());
            assertEquals(live, backend.liveTensors(), "the merged copies are freed");
            Numerics.assertClose("merged vs branches", new long[] {1, 4, 8, 8}, branches, merged, 1e-5, 1e-4);
            assertArrayEquals(branches, eps(models, root, latents), "after closing: the branch form, bit for bit");
            assertTrue(TemporaryMerge.extraBytes(net.network()) > 0);
        }
    }

    @Test
    void samplingMergedLeavesTheTrainingRunUnchanged() throws Exception {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 4, Color.RED, "ohwx, red disc");
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "ohwx, red disc --w 64 --h 64 --s 2\n");
        String[] flags = {"--max_train_steps=2", "--save_every_n_steps=100", "--save_precision=float",
                "--sample_prompts=" + prompts, "--sample_every_n_steps=1"};
        List<Trainer.Result> results = new ArrayList<>();
        for (Boolean merge : new Boolean[] {false, true}) {
            Trainer.mergeSamplesForTests = merge;
            try {
                results.add(TrainRuns.train(TrainRuns.config(data, tmp.resolve("merge-" + merge), flags), Reporter.SILENT));
            } finally {
                Trainer.mergeSamplesForTests = null;
            }
        }
        for (Trainer.Result r : results) {
            assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        }
        assertEquals(results.get(0).losses(), results.get(1).losses());
        try (SafetensorsFile a = SafetensorsFile.open(results.get(0).lastLora());
             SafetensorsFile b = SafetensorsFile.open(results.get(1).lastLora())) {
            for (String key : a.names()) {
                assertArrayEquals(a.readFloats(key), b.readFloats(key), key);
            }
        }
        assertEquals(3, Cli.listing(tmp.resolve("merge-true").resolve("sample")).size(), "two rounds and the montage");
    }
}
