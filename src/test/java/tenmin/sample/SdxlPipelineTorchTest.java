package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.lora.BlockWeights;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;
import tenmin.testing.TorchBackendTests;

/**
 * The same renders on the torch backend (the CPU libtorch the build fetches) as on the cpu backend: the
 * pipeline uses only the backend contract, so text encoding, guidance, per-sample LoRA multipliers (both
 * fixture LoRAs, one with a block vector) and the VAE agree within fp32 rounding.
 */
@Tag("torch")
class SdxlPipelineTorchTest extends TorchBackendTests {

    private static List<SdxlPipeline.Image> render(Backend backend) {
        ModelFixture fx = ModelFixture.of(Fixtures.modelDirs().getFirst());
        SdxlConfig config = SdxlConfig.fromConfigFile(fx.file("config.json"));
        List<LoraSpec> specs = List.of(new LoraSpec(fx.file("locon.safetensors"), 0.9, "%default=1,out=0.5"),
                new LoraSpec(fx.file("te-locon.safetensors"), 1.2, null));
        try (Scope root = Scope.root(backend, "test");
             SdxlModels models = SdxlModels.load(fx.file("checkpoint.safetensors"), config, root, SdxlDtypes.fp32());
             LoraSet loras = LoraSet.attach(LoraSet.prepare(specs, config, BlockWeights.Options.defaults(), Reporter.SILENT),
                     models, root)) {
            SdxlPipeline p = new SdxlPipeline(models, loras, PromptEncoder.Options.A1111, Reporter.SILENT);
            SdxlPipeline.Settings s = new SdxlPipeline.Settings("a (red:1.3) fox BREAK snow", "blurry", 32, 32,
                    Sampler.Settings.of(SamplerKind.DPMPP_2M, 2, ScheduleType.KARRAS), 5.0);
            double[] teOff = loras.defaultMultipliers();
            for (int i = 0; i < teOff.length; i++) {
                if (loras.modules().get(i).isTextEncoder()) {
                    teOff[i] = 0;
                }
            }
            return new ArrayList<>(p.render(root, s, List.of(new SdxlPipeline.Job(4, null),
                    new SdxlPipeline.Job(5, teOff), new SdxlPipeline.Job(6, new double[teOff.length]))));
        } finally {
            assertEquals(0, backend.liveTensors(), "tensors left alive on " + backend.name());
        }
    }

    @Test
    void torchBackendRendersWhatTheCpuBackendRenders() {
        List<SdxlPipeline.Image> expected;
        try (CpuBackend cpu = new CpuBackend(2)) {
            expected = render(cpu);
        }
        List<SdxlPipeline.Image> got = render(torch);
        for (int i = 0; i < expected.size(); i++) {
            Numerics.assertRelClose("latent " + i, new long[] {1, 4, 4, 4}, expected.get(i).latent(), got.get(i).latent(), 1e-4);
            byte[] a = expected.get(i).image().toBytes();
            byte[] b = got.get(i).image().toBytes();
            int worst = 0;
            for (int k = 0; k < a.length; k++) {
                worst = Math.max(worst, Math.abs((a[k] & 0xFF) - (b[k] & 0xFF)));
            }
            assertEquals(0, worst, 1, "image " + i + " differs by at most one level");
        }
    }
}
