package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.testing.SdxlKeyList;
import tenmin.testing.TrainRuns;

/**
 * The guide's LoCon on the real SDXL architecture, planned from shapes alone: the module lists of
 * sdxl-keys.json (788 U-Net modules; 264 text-encoder modules with attention, 88 with MLP only, chosen by
 * {@code --text_encoder_modules}), the trainable counts of trainer-spec §8.3, and the memory plan they give.
 */
class NetworkPlanTest {
    @TempDir
    Path tmp;

    private TrainConfig guide(String... extra) {
        List<String> a = new ArrayList<>(List.of("--network_dim=8", "--network_alpha=4", "--network_args",
                "preset=full", "conv_dim=256", "conv_alpha=4", "algo=locon", "--optimizer_type=ClybW"));
        a.addAll(List.of(extra));
        return TrainRuns.config(tmp, tmp.resolve("out"), a.toArray(String[]::new));
    }

    private static List<String> names(List<SdxlKeyList.Module> modules) {
        return modules.stream().map(SdxlKeyList.Module::name).toList();
    }

    @Test
    void guideNetworkOnSdxlHasTheReferenceModules() {
        List<LoConTarget> full = MemoryPlan.plannedTargets(SdxlConfig.sdxl(), guide().network());
        List<String> expected = new ArrayList<>(names(SdxlKeyList.modules("locon_te_full")));
        expected.addAll(names(SdxlKeyList.modules("locon_unet")));
        assertEquals(new java.util.TreeSet<>(expected), new java.util.TreeSet<>(full.stream().map(LoConTarget::name).toList()));
        assertEquals(264 + 788, full.size());
        for (LoConTarget t : full) {
            assertEquals(t.isConv() && t.kernel() > 1 ? 256 : 8, t.rank(), t.name());
            assertEquals(4.0, t.alpha(), t.name());
        }
        // trainer-spec §8.3: U-Net 112,842,240 values, text encoders 7,225,344 (264 modules) or 4,014,080 (88)
        long unet = full.stream().filter(t -> t.name().startsWith("lora_unet_")).mapToLong(LoConTarget::parameterCount).sum();
        long te = full.stream().filter(t -> !t.name().startsWith("lora_unet_")).mapToLong(LoConTarget::parameterCount).sum();
        assertEquals(112_842_240L, unet);
        assertEquals(7_225_344L, te);

        List<LoConTarget> mlp = MemoryPlan.plannedTargets(SdxlConfig.sdxl(), guide("--text_encoder_modules=mlp").network());
        List<String> mlpNames = mlp.stream().map(LoConTarget::name).filter(n -> !n.startsWith("lora_unet_")).toList();
        assertEquals(new java.util.TreeSet<>(names(SdxlKeyList.modules("locon_te_mlp"))), new java.util.TreeSet<>(mlpNames));
        assertEquals(4_014_080L, mlp.stream().filter(t -> !t.name().startsWith("lora_unet_"))
                .mapToLong(LoConTarget::parameterCount).sum());

        List<LoConTarget> unetOnly = MemoryPlan.plannedTargets(SdxlConfig.sdxl(), guide("--network_train_unet_only").network());
        assertEquals(788, unetOnly.size());
    }

    @Test
    void memoryPlanOfTheGuideOnAGpu() {
        long values = 112_842_240L + 7_225_344L;
        MemoryPlan plan = MemoryPlan.of(SdxlConfig.sdxl(), SdxlDtypes.of(tenmin.engine.api.Device.cuda(0), "bf16"),
                values, 2, false, 0);
        assertEquals(8 * values, plan.device().get("LoCon parameters and gradients (fp32)"));
        assertEquals(8 * values + 8 * values, plan.hostTotal(), "values, gradients and two ClybW moments, fp32");
        MemoryPlan onDevice = MemoryPlan.of(SdxlConfig.sdxl(), SdxlDtypes.of(tenmin.engine.api.Device.cuda(0), "bf16"),
                values, 2, true, 0);
        assertEquals(8 * values, onDevice.device().get("optimizer moments (2 per value)"));
        assertEquals(plan.deviceTotal() + 8 * values, onDevice.deviceTotal());
        assertEquals(4 * values, onDevice.hostTotal(), "the values only, for saves");
        // a bf16 U-Net: every value of sdxl-keys.json's U-Net section at 2 bytes
        long unetValues = SdxlKeyList.shapes("unet").values().stream().mapToLong(tenmin.engine.api.Shape::numel).sum();
        assertEquals(2L * unetValues, plan.device().get("unet weights"));
        assertTrue(plan.lines("cuda:0").getFirst().startsWith("memory plan, cuda:0"));
    }
}
