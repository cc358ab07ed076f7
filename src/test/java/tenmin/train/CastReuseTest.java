package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.lora.LoConPreset;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.train.optim.Optimizer;
import tenmin.train.optim.Optimizers;
import tenmin.train.optim.Param;
import tenmin.train.optim.ParamGroup;

/**
 * The bf16 copies of the LoCon parameters kept over an optimizer window (LoConModule#reuseCasts, on in every
 * TrainableNetwork): two windows of bf16 training with an optimizer step between give bit for bit the gradients
 * and values of casting afresh in every call. A copy left stale after the step would change the second window.
 */
class CastReuseTest {

    private static List<float[]> run(boolean reuse) {
        TrainBenchmark.Setup setup = new TrainBenchmark.Setup("tiny", SdxlConfig.tiny(),
                new SdxlDtypes(DType.BF16, DType.BF16, DType.F32), 2, 16, 16, CheckpointPolicy.all(), true,
                TrainBenchmark.Setup.RECIPE_RANKS, LoConPreset.TextEncoderModules.FULL, 2, 3);
        try (CpuBackend backend = new CpuBackend(2); Scope root = Scope.root(backend, "cast reuse")) {
            SdxlModels models = SdxlModels.random(setup.model(), root, setup.dtypes(), 5);
            TrainableNetwork net = TrainableNetwork.create(models, setup.ranks(), setup.teModules(), true, true, 1e-3,
                    1e-3, root.child("locon"), 9);
            net.network().reuseCasts(reuse);
            // non-zero up matrices, so that every gradient and the second window depend on the step
            List<tenmin.train.save.StateTensor> values = new ArrayList<>();
            SplittableRandom rng = new SplittableRandom(4);
            for (ParamGroup g : net.groups()) {
                for (Param p : g.params()) {
                    float[] v = p.value().clone();
                    if (p.name().contains("lora_up")) {
                        for (int i = 0; i < v.length; i++) {
                            v[i] = (float) rng.nextDouble(-0.05, 0.05);
                        }
                    }
                    values.add(new tenmin.train.save.StateTensor(p.name(), p.shape(), v));
                }
            }
            net.restore(values, "test");
            Optimizer optimizer = Optimizers.create("AdamW", Map.of());
            List<float[]> out = new ArrayList<>();
            SplittableRandom data = new SplittableRandom(8);
            for (int window = 0; window < 2; window++) {
                for (int micro = 0; micro < 2; micro++) {
                    Trainer.forwardBackward(models, root, TrainBenchmark.inputs(setup, data), PooledProjection.SAI, true,
                            2, bytes -> { });
                }
                double[] lrs = {1e-3, 1e-3};
                Trainer.hostOptimizerStep(net, optimizer, 1.0, lrs);
                for (ParamGroup g : net.groups()) {
                    for (Param p : g.params()) {
                        out.add(p.value().clone());
                    }
                }
            }
            models.close();
            return out;
        }
    }

    @Test
    void keptCopiesTrainExactlyAsFreshCasts() {
        List<float[]> fresh = run(false);
        List<float[]> kept = run(true);
        assertEquals(fresh.size(), kept.size());
        boolean moved = false;
        int half = fresh.size() / 2;
        for (int i = 0; i < fresh.size(); i++) {
            assertArrayEquals(fresh.get(i), kept.get(i), "value " + i);
            if (i >= half) {
                moved |= !java.util.Arrays.equals(fresh.get(i - half), fresh.get(i));
            }
        }
        assertFalse(!moved, "the second step changed no value: the test would not see a stale copy");
    }
}
