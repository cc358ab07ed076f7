package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.testing.Numerics;
import tenmin.testing.TrainRuns;
import tenmin.train.optim.Param;
import tenmin.train.optim.ParamGroup;

/**
 * Gradient accumulation as accelerate does it (trainer-spec §7.2): every micro-batch backpropagates
 * {@code loss / accumulation} into the same gradients, so k equal micro-batches give the gradient of one
 * batch k times as large (its MSE is the mean over all images); micro-batches of unequal size are weighted
 * equally, i.e. {@code (g₁ + g₂) / 2}, not by their image counts.
 */
class GradientAccumulationTest {
    private static CpuBackend backend;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /** Four images of random inputs (8x8 latents: 64x64 pixels), one caption each. */
    private static BatchInputs batch(int from, int to) {
        return batch(from, to, null);
    }

    /** {@link #batch(int, int)} with these loss weights for its images (null: none). */
    static BatchInputs batch(int from, int to, float[] lossWeights) {
        Rng rng = new Rng(99);
        int c = 4;
        int h = 8;
        int w = 8;
        int per = c * h * w;
        float[] noisy = new float[4 * per];
        float[] noise = new float[4 * per];
        rng.fillGaussian(noisy);
        rng.fillGaussian(noise);
        int[] t = {17, 500, 803, 999};
        List<String> captions = List.of("ohwx, red disc", "a cat", "blue square, white background", "");
        List<int[]> sizes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            sizes.add(new int[] {64 + i, 64, i, 0, 64, 64});
        }
        int n = to - from;
        return new BatchInputs(n, c, h, w, Arrays.copyOfRange(noisy, from * per, to * per),
                Arrays.copyOfRange(noise, from * per, to * per), Arrays.copyOfRange(t, from, to),
                captions.subList(from, to), sizes.subList(from, to), lossWeights);
    }

    /** Runs the micro-batches [from, to) with the given accumulation and returns the host gradients. */
    static List<float[]> gradients(TrainableNetwork net, SdxlModels models, Scope scope, int accumulation,
                                           float[] losses, int[]... ranges) {
        for (int i = 0; i < ranges.length; i++) {
            losses[i] = Trainer.forwardBackward(models, scope, batch(ranges[i][0], ranges[i][1]), PooledProjection.SAI,
                    false, accumulation, bytes -> { });
        }
        net.gradientsToHost();
        List<float[]> out = new ArrayList<>();
        for (ParamGroup g : net.groups()) {
            for (Param p : g.params()) {
                out.add(p.grad().clone());
            }
        }
        net.clearHostGradients();
        return out;
    }

    /** The tiny model's LoCon (preset full, 4/2 and 8/4) with every up and down drawn from N(0, 0.05²). */
    static TrainableNetwork nonZeroNetwork(SdxlModels models, Scope root, Rng rng) {
        TrainableNetwork net = TrainableNetwork.create(models, new LoConRanks(4, 2, 8, 4),
                LoConPreset.TextEncoderModules.FULL, true, true, 1e-3, 1e-3, root.child("locon"), 3);
        for (ParamGroup g : net.groups()) {
            for (Param p : g.params()) {
                for (int i = 0; i < p.numel(); i++) {
                    p.value()[i] = (float) (0.05 * rng.nextGaussian());
                }
            }
        }
        net.valuesToDevice();
        return net;
    }

    @Test
    void equalMicroBatchesAccumulateToTheFullBatchGradient() {
        try (Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.load(TrainRuns.checkpoint(), SdxlConfig.tiny(), root, SdxlDtypes.fp32())) {
            // non-zero up and down everywhere, so every parameter gets a gradient
            TrainableNetwork net = nonZeroNetwork(models, root, new Rng(5));

            float[] full = new float[1];
            List<float[]> one = gradients(net, models, root, 1, full, new int[] {0, 4});
            float[] halves = new float[2];
            List<float[]> two = gradients(net, models, root, 2, halves, new int[] {0, 2}, new int[] {2, 4});
            assertEquals(full[0], (halves[0] + halves[1]) / 2, 1e-5 * full[0], "the big batch's loss is the mean of the halves'");
            double max = 0;
            for (float[] g : one) {
                for (float v : g) {
                    max = Math.max(max, Math.abs(v));
                }
            }
            for (int i = 0; i < one.size(); i++) {
                Numerics.assertClose("accumulated gradient " + i, null, one.get(i), two.get(i), 1e-5 * max, 1e-4);
            }

            // unequal micro-batches (3 + 1 images) count equally: (g(3 images) + g(1 image)) / 2
            float[] l = new float[2];
            List<float[]> uneven = gradients(net, models, root, 2, l, new int[] {0, 3}, new int[] {3, 4});
            List<float[]> g3 = gradients(net, models, root, 1, new float[1], new int[] {0, 3});
            List<float[]> g1 = gradients(net, models, root, 1, new float[1], new int[] {3, 4});
            for (int i = 0; i < uneven.size(); i++) {
                float[] expected = new float[g3.get(i).length];
                for (int j = 0; j < expected.length; j++) {
                    expected[j] = (g3.get(i)[j] + g1.get(i)[j]) / 2;
                }
                Numerics.assertClose("3 + 1 accumulation " + i, null, expected, uneven.get(i), 1e-5 * max, 1e-4);
            }
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
