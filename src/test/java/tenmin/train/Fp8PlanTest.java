package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.Device;
import tenmin.engine.api.Shape;
import tenmin.lora.LoConPreset;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.testing.SdxlKeyList;

/**
 * {@code --fp8_base} at the real SDXL sizes: the memory plan counts one byte per U-Net and text-encoder weight (the
 * text encoders' token and position embeddings two, in bf16), from {@code sdxl-keys.json}'s inventory; with the
 * text-encoder outputs cached only the U-Net is fp8; and the planned micro-batch (meta backend, what
 * {@code --checkpointing auto} decides with) starts with that much less on the device.
 */
class Fp8PlanTest {
    private static final SdxlDtypes BF16 = SdxlDtypes.of(Device.cuda(0), "bf16");

    private static boolean embedding(String key) {
        return key.endsWith("text_model.embeddings.token_embedding.weight")
                || key.endsWith("text_model.embeddings.position_embedding.weight")
                || key.endsWith("model.token_embedding.weight") || key.endsWith("model.positional_embedding");
    }

    /** Bytes of a section of the inventory: embeddings at 2 bytes, the rest at {@code bytes}. */
    private static long bytes(String section, int bytes) {
        long n = 0;
        for (Map.Entry<String, Shape> e : SdxlKeyList.shapes(section).entrySet()) {
            n += e.getValue().numel() * (embedding(e.getKey()) ? 2 : bytes);
        }
        return n;
    }

    @Test
    void theMemoryPlanCountsOneByteAWeight() {
        long values = 112_842_240L + 7_225_344L;
        MemoryPlan bf16 = MemoryPlan.of(SdxlConfig.sdxl(), BF16, values, 2, false, 0);
        MemoryPlan fp8 = MemoryPlan.of(SdxlConfig.sdxl(), BF16.withFp8Base(true), values, 2, false, 0);
        MemoryPlan cached = MemoryPlan.of(SdxlConfig.sdxl(), BF16.withFp8Base(false), values, 2, false, 0);
        long unetValues = 2_567_463_684L;
        assertEquals(2 * unetValues, bf16.device().get("unet weights"), "5.1 GB");
        assertEquals(unetValues, fp8.device().get("unet weights"), "2.6 GB");
        assertEquals(bytes("unet", 1), fp8.device().get("unet weights"));
        long te16 = bytes("te1", 2) + bytes("te2", 2);
        long te8 = bytes("te1", 1) + bytes("te2", 1);
        assertEquals(te16, bf16.device().get("text encoders weights"));
        assertEquals(te8, fp8.device().get("text encoders weights"));
        assertTrue(te8 < 0.6 * te16, te8 + " of " + te16 + ": the embeddings stay 16-bit");
        assertEquals(te16, cached.device().get("text encoders weights"), "outputs cached: the encoders stay bf16");
        assertEquals(unetValues, cached.device().get("unet weights"));
        assertEquals(bf16.device().get("vae weights"), fp8.device().get("vae weights"));
        assertEquals(bf16.deviceTotal() - fp8.deviceTotal(), unetValues + te16 - te8);
        assertEquals(bf16.hostTotal(), fp8.hostTotal());
        assertTrue(BF16.withFp8Base(true).toString().contains("(weights f8_e4m3)"), BF16.withFp8Base(true).toString());
    }

    /** The planned micro-batch of the recipe (U-Net trained, text encoders run in the step) on a GPU. */
    @Test
    void thePlannedStepStartsWithTheSmallerWeights() {
        TrainBenchmark.Plan[] plans = new TrainBenchmark.Plan[2];
        SdxlDtypes[] dtypes = {BF16, BF16.withFp8Base(true)};
        for (int i = 0; i < 2; i++) {
            TrainBenchmark.Setup setup = new TrainBenchmark.Setup("sdxl", SdxlConfig.sdxl(), dtypes[i], 1, 128, 128,
                    CheckpointPolicy.all(), false, TrainBenchmark.Setup.RECIPE_RANKS, LoConPreset.TextEncoderModules.FULL,
                    1, 1);
            plans[i] = TrainBenchmark.plan(setup, Device.cuda(0));
        }
        long saved = total(plans[0].weightBytes()) - total(plans[1].weightBytes());
        assertEquals(2_567_463_684L + (bytes("te1", 2) + bytes("te2", 2)) - (bytes("te1", 1) + bytes("te2", 1)), saved);
        // held when the micro-batch starts: text encoder 2's logit_scale is planned (it is in the inventory) but never read
        assertEquals(saved - 1, plans[0].stepStartBytes() - plans[1].stepStartBytes(), "held when the micro-batch starts");
        // at the peak the fp8 run also holds the 16-bit casts of the layers in flight, as autocast does
        long peakSaved = plans[0].loopPeakBytes() - plans[1].loopPeakBytes();
        assertTrue(peakSaved > 0.8 * saved && peakSaved <= saved, "peak " + peakSaved + " of " + saved + " saved");
    }

    private static long total(Map<String, Long> m) {
        return m.values().stream().mapToLong(Long::longValue).sum();
    }
}
