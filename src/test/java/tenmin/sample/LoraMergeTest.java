package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.StDType;
import tenmin.lora.BlockWeights;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.nn.AdaptableLayer;
import tenmin.testing.CheckpointCopies;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * Merging LoRAs into an fp16 checkpoint's weights on the cpu backend (what {@code tenmin sample} does): the merged
 * weights stay in 16 bits (no more memory than before, the LoRA tensors released), and the render follows the
 * bypass render within the fp16 rounding of the merged weights.
 */
class LoraMergeTest {
    @TempDir
    Path tmp;

    private float[] render(Path checkpoint, boolean merge, long[] bytes) {
        ModelFixture fx = ModelFixture.of(Fixtures.modelDirs().getFirst());
        SdxlConfig config = SdxlConfig.fromConfigFile(fx.file("config.json"));
        List<LoraSpec> specs = List.of(new LoraSpec(fx.file("locon.safetensors"), 0.8, null),
                new LoraSpec(fx.file("te-locon.safetensors"), 1.0, null));
        try (CpuBackend cpu = new CpuBackend(2);
             Scope root = Scope.root(cpu, "test");
             SdxlModels models = SdxlModels.load(checkpoint, config, root, SdxlDtypes.fp32());
             LoraSet loras = LoraSet.attach(LoraSet.prepare(specs, config, BlockWeights.Options.defaults(), Reporter.SILENT),
                     models, root)) {
            if (merge) {
                long before = cpu.liveBytes();
                loras.merge();
                bytes[0] = before;
                bytes[1] = cpu.liveBytes();
                for (AdaptableLayer l : models.unet().layers()) {
                    assertEquals(DType.F16, cpu.frozenStorage(l.weight()), l.path() + " stays in 16 bits");
                }
            }
            SdxlPipeline p = new SdxlPipeline(models, loras, PromptEncoder.Options.A1111, Reporter.SILENT);
            SdxlPipeline.Settings s = new SdxlPipeline.Settings("a red fox", "blurry", 32, 32,
                    Sampler.Settings.of(SamplerKind.EULER_A, 3), 5.0);
            return p.render(root, s, List.of(new SdxlPipeline.Job(7, null))).getFirst().latent();
        }
    }

    @Test
    void mergedFp16WeightsStayHalfAndRenderLikeTheBypass() throws IOException {
        ModelFixture fx = ModelFixture.of(Fixtures.modelDirs().getFirst());
        Path half = CheckpointCopies.copy(fx.file("checkpoint.safetensors"), tmp.resolve("fp16.safetensors"), StDType.F16,
                Set.of(), Map.of());
        long[] bytes = new long[2];
        float[] bypass = render(half, false, null);
        float[] merged = render(half, true, bytes);
        assertTrue(bytes[1] < bytes[0], "merging frees the LoRA tensors and adds nothing: " + bytes[0] + " -> " + bytes[1]);
        Numerics.assertRelClose("merged vs bypass, fp16 weights", new long[] {1, 4, 4, 4}, bypass, merged, 2e-2);
    }
}
