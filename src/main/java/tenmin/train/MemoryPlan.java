package tenmin.train;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipKeys;
import tenmin.models.clip.SdxlTextEncoders;
import tenmin.models.nn.MetaParams;
import tenmin.models.sdxl.Unet;

/**
 * The storage a run needs, by category, computed from the configuration before anything is allocated
 * (the real SDXL sizes included): frozen weights per network in their dtypes, the LoCon parameters and
 * their gradients on the device (fp32), the host copies the optimizer works on (values, gradients, moment
 * buffers; or the moments on the device and only the values on the host, when the optimizer steps there), and the
 * latent cache. Activations depend on the batch and are measured during the first
 * micro-batch instead.
 *
 * @param device bytes per category on the device
 * @param host   bytes per category in host memory
 */
public record MemoryPlan(Map<String, Long> device, Map<String, Long> host) {

    /**
     * @param loraParams      trainable values of the LoCon network
     * @param optimizerSlots  moment buffers per value ({@link tenmin.train.optim.Optimizer#slotNames()})
     * @param onDevice        the optimizer steps on the device ({@link tenmin.train.optim.DeviceClybW}): its moments are
     *                        there, and the host keeps only the values (for saves)
     * @param latentCacheHost bytes of latents kept in memory (0 when cached on disk or not cached)
     */
    public static MemoryPlan of(SdxlConfig config, SdxlDtypes dtypes, long loraParams, int optimizerSlots,
                                boolean onDevice, long latentCacheHost) {
        Map<String, Long> device = new LinkedHashMap<>();
        for (Map.Entry<String, Long> e : SdxlModels.plannedWeightBytes(config, dtypes).entrySet()) {
            device.put(e.getKey() + " weights", e.getValue());
        }
        device.put("LoCon parameters and gradients (fp32)", 2 * 4 * loraParams);
        Map<String, Long> host = new LinkedHashMap<>();
        String moments = "optimizer moments (" + optimizerSlots + " per value)";
        if (onDevice) {
            device.put(moments, (long) optimizerSlots * 4 * loraParams);
            host.put("LoCon values for saves (fp32)", 4 * loraParams);
        } else {
            host.put("LoCon values and gradients for the optimizer (fp32)", 2 * 4 * loraParams);
            host.put(moments, (long) optimizerSlots * 4 * loraParams);
        }
        if (latentCacheHost > 0) {
            host.put("latent cache", latentCacheHost);
        }
        return new MemoryPlan(device, host);
    }

    /** The modules of the run's LoCon network, from shapes alone (meta models: nothing allocated). */
    public static List<LoConTarget> plannedTargets(SdxlConfig config, TrainConfig.Network n) {
        Unet unet = Unet.meta(config.unet());
        SdxlTextEncoders te = SdxlTextEncoders.build(MetaParams.of(ClipKeys.TE1_PREFIX),
                MetaParams.of(ClipKeys.TE2_PREFIX), config.te1(), config.te2());
        return TrainableNetwork.targets(unet.layers(), unet.moduleClasses(), te.te1().adaptableLayers(),
                te.te2().adaptableLayers(), new tenmin.lora.LoConRanks(n.dim(), n.alpha(), n.convDim(), n.convAlpha()),
                n.teModules(), n.trainTextEncoder(), n.trainUnet());
    }

    public long deviceTotal() {
        return device.values().stream().mapToLong(Long::longValue).sum();
    }

    public long hostTotal() {
        return host.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Printable lines: one per category and a total per side. */
    public List<String> lines(String deviceName) {
        List<String> out = new ArrayList<>();
        out.add("memory plan, " + deviceName + " (before activations): " + size(deviceTotal()));
        device.forEach((k, v) -> out.add("  " + k + ": " + size(v)));
        out.add("memory plan, host: " + size(hostTotal()));
        host.forEach((k, v) -> out.add("  " + k + ": " + size(v)));
        return out;
    }

    /** {@code 1.2 GB}, {@code 34.5 MB}, {@code 512 KB}, decimal units. */
    public static String size(long bytes) {
        if (bytes >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
        }
        if (bytes >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
        }
        return String.format(Locale.ROOT, "%.0f KB", bytes / 1e3);
    }
}
