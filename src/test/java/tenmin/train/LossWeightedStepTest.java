package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.testing.Numerics;
import tenmin.testing.TrainRuns;

/**
 * The training step with per-image loss weights ({@code --min_snr_gamma}, {@code --debiased_estimation_loss}):
 * the loss is {@code mean_b(w_b · loss_b)} and its gradient {@code mean_b(w_b · g_b)}, where {@code loss_b} and
 * {@code g_b} come from runs of each image alone without weights (the images of a micro-batch do not interact).
 */
class LossWeightedStepTest {

    @Test
    void weightedLossAndGradientAreTheWeightedMeansOfEachImagesOwn() {
        float[] w = {0.25f, 1f, 0.5f, 2f};
        try (CpuBackend backend = new CpuBackend(2)) {
            try (Scope root = Scope.root(backend, "test");
                 SdxlModels models = SdxlModels.load(TrainRuns.checkpoint(), SdxlConfig.tiny(), root, SdxlDtypes.fp32())) {
                TrainableNetwork net = GradientAccumulationTest.nonZeroNetwork(models, root, new Rng(5));
                float loss = Trainer.forwardBackward(models, root, GradientAccumulationTest.batch(0, 4, w),
                        PooledProjection.SAI, false, 1, bytes -> { });
                // no further micro-batches: collects (and clears) the gradients of the weighted one
                List<float[]> weighted = GradientAccumulationTest.gradients(net, models, root, 1, new float[0]);

                double expectedLoss = 0;
                List<float[]> expected = null;
                double max = 0;
                for (int b = 0; b < 4; b++) {
                    float[] one = new float[1];
                    List<float[]> g = GradientAccumulationTest.gradients(net, models, root, 1, one, new int[] {b, b + 1});
                    expectedLoss += w[b] * one[0] / 4;
                    if (expected == null) {
                        expected = g.stream().map(a -> new float[a.length]).toList();
                    }
                    for (int i = 0; i < g.size(); i++) {
                        for (int j = 0; j < g.get(i).length; j++) {
                            expected.get(i)[j] += w[b] * g.get(i)[j] / 4;
                            max = Math.max(max, Math.abs(expected.get(i)[j]));
                        }
                    }
                }
                assertEquals(expectedLoss, loss, 1e-5 * expectedLoss, "the weighted mean of the images' losses");
                for (int i = 0; i < expected.size(); i++) {
                    Numerics.assertClose("weighted gradient " + i, null, expected.get(i), weighted.get(i), 1e-5 * max, 1e-4);
                }
            }
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        }
    }
}
