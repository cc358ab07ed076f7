package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        return render(backend, SdxlDtypes.fp32());
    }

    /** The fixture model in {@code dtypes} with both fixture LoRAs (one with a block vector). */
    private record Loaded(Scope root, SdxlModels models, LoraSet loras) implements AutoCloseable {
        static Loaded of(Backend backend, SdxlDtypes dtypes) {
            ModelFixture fx = ModelFixture.of(Fixtures.modelDirs().getFirst());
            SdxlConfig config = SdxlConfig.fromConfigFile(fx.file("config.json"));
            List<LoraSpec> specs = List.of(new LoraSpec(fx.file("locon.safetensors"), 0.9, "%default=1,out=0.5"),
                    new LoraSpec(fx.file("te-locon.safetensors"), 1.2, null));
            Scope root = Scope.root(backend, "test");
            SdxlModels models = SdxlModels.load(fx.file("checkpoint.safetensors"), config, root, dtypes);
            return new Loaded(root, models, LoraSet.attach(LoraSet.prepare(specs, config, BlockWeights.Options.defaults(),
                    Reporter.SILENT), models, root));
        }

        @Override
        public void close() {
            try (Scope r = root; SdxlModels m = models; LoraSet l = loras) {
                // closed in reverse order
            }
        }
    }

    private static List<SdxlPipeline.Image> render(Backend backend, SdxlDtypes dtypes) {
        try (Loaded l = Loaded.of(backend, dtypes)) {
            Scope root = l.root();
            SdxlModels models = l.models();
            LoraSet loras = l.loras();
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

    /**
     * `tenmin sample --precision fp16` (the GPU default) and bf16: U-Net, text encoders and LoRAs in 16 bits, VAE
     * fp32, on the torch backend. The fp16 latents stay within 2 % (of the largest value) of the fp32 render, and
     * closer to it than bf16's (3 more mantissa bits), which is why sampling defaults to fp16.
     */
    @Test
    void sixteenBitRendersFollowTheFp32Render() {
        List<SdxlPipeline.Image> expected;
        try (CpuBackend cpu = new CpuBackend(2)) {
            expected = render(cpu);
        }
        double[] worst = new double[2];
        tenmin.engine.api.DType[] dtypes = {tenmin.engine.api.DType.F16, tenmin.engine.api.DType.BF16};
        for (int d = 0; d < dtypes.length; d++) {
            List<SdxlPipeline.Image> got = render(torch, new SdxlDtypes(dtypes[d], dtypes[d], tenmin.engine.api.DType.F32));
            for (int i = 0; i < expected.size(); i++) {
                float[] e = expected.get(i).latent();
                float[] g = got.get(i).latent();
                double maxRef = 0;
                double maxDiff = 0;
                for (int k = 0; k < e.length; k++) {
                    assertTrue(Float.isFinite(g[k]), dtypes[d] + " latent " + i + " is finite");
                    maxRef = Math.max(maxRef, Math.abs(e[k]));
                    maxDiff = Math.max(maxDiff, Math.abs(e[k] - g[k]));
                }
                worst[d] = Math.max(worst[d], maxDiff / maxRef);
            }
        }
        assertTrue(worst[0] < 2e-2, "fp16: " + worst[0]);
        assertTrue(worst[0] < worst[1], "fp16 " + worst[0] + " vs bf16 " + worst[1]);
    }

    /** One render with the default multipliers, LoRAs in bypass form or merged into the weights. */
    private static float[] renderDefault(Backend backend, SdxlDtypes dtypes, boolean merge) {
        try (Loaded l = Loaded.of(backend, dtypes)) {
            Scope root = l.root();
            SdxlModels models = l.models();
            LoraSet loras = l.loras();
            if (merge) {
                loras.merge();
                double[] other = loras.defaultMultipliers();
                other[0] += 1;
                org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> loras.apply(other));
            }
            SdxlPipeline p = new SdxlPipeline(models, loras, PromptEncoder.Options.A1111, Reporter.SILENT);
            SdxlPipeline.Settings s = new SdxlPipeline.Settings("a (red:1.3) fox BREAK snow", "blurry", 32, 32,
                    Sampler.Settings.of(SamplerKind.DPMPP_2M, 2, ScheduleType.KARRAS), 5.0);
            return p.render(root, s, List.of(new SdxlPipeline.Job(4, null))).getFirst().latent();
        } finally {
            assertEquals(0, backend.liveTensors(), "tensors left alive on " + backend.name());
        }
    }

    /**
     * LoRAs merged into the frozen weights ({@code tenmin sample}'s form) render what the bypass branches
     * render: within fp32 rounding in fp32 on both backends, within fp16 rounding of the merged weights in fp16.
     */
    @Test
    void mergedLorasRenderWhatTheBypassRenders() {
        try (CpuBackend cpu = new CpuBackend(2)) {
            Numerics.assertRelClose("cpu fp32 merged", new long[] {1, 4, 4, 4}, renderDefault(cpu, SdxlDtypes.fp32(), false),
                    renderDefault(cpu, SdxlDtypes.fp32(), true), 1e-4);
        }
        Numerics.assertRelClose("torch fp32 merged", new long[] {1, 4, 4, 4}, renderDefault(torch, SdxlDtypes.fp32(), false),
                renderDefault(torch, SdxlDtypes.fp32(), true), 1e-4);
        SdxlDtypes fp16 = new SdxlDtypes(tenmin.engine.api.DType.F16, tenmin.engine.api.DType.F16,
                tenmin.engine.api.DType.F32);
        Numerics.assertRelClose("torch fp16 merged", new long[] {1, 4, 4, 4}, renderDefault(torch, fp16, false),
                renderDefault(torch, fp16, true), 2e-2);
    }
}
