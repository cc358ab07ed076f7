package tenmin.tools.resize;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.TensorInfo;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.lora.SdxlKeyMap;
import tenmin.lora.SdxlKeyMap.Target;

/**
 * Pairs the modules of a LoRA file with the checkpoint weights they modify, as the reference's v2024
 * {@code PairedLoraModel} does (postprocess-spec §2.3), and validates every paired module before any
 * work starts.
 *
 * <p>Order: checkpoint keys sorted, row chunks in chunk order. Text encoder 2's fused
 * {@code attn.in_proj_weight} holds q, k, v in that order; by default q_proj is paired with chunk 0 and
 * k_proj with chunk 1. In compat mode the reference's swap is reproduced (k_proj ↔ chunk 0,
 * q_proj ↔ chunk 1), which changes only the scores that use the checkpoint weight.
 */
final class Pairing {
    static final String TE2_IN_PROJ = "attn.in_proj_weight";

    private Pairing() {
    }

    /** A checkpoint weight (or row chunk of one) flattened to (rows, cols), with its file location. */
    record Base(Target target, TensorInfo info, int rows, int cols) {
        /** Byte offset of the chunk inside the tensor's data. */
        long byteOffset() {
            return (long) target.chunk() * rows * cols * info.dtype().sizeBytes();
        }

        long count() {
            return (long) rows * cols;
        }
    }

    /**
     * One LoRA module and its base weight.
     *
     * @param inputShape down's shape after the rank ({@code [in]} or {@code [in, kh, kw]})
     * @param upIs4d     whether up is {@code [out, r, 1, 1]} (conv LoCon) rather than {@code [out, r]}
     */
    record Module(String name, Base base, TensorInfo down, TensorInfo up, TensorInfo alpha, TensorInfo doraScale,
                  int rank, int out, int cols, long[] inputShape, boolean upIs4d) {
    }

    /** The mapping of every module name this checkpoint can pair, in pairing order. */
    static Map<String, Target> targets(SdxlKeyMap map, boolean compat) {
        List<Map.Entry<String, Target>> list = new ArrayList<>();
        for (Map.Entry<String, Target> e : map.modules().entrySet()) {
            Target t = compat ? referenceSwap(e.getValue()) : e.getValue();
            list.add(Map.entry(e.getKey(), t));
        }
        list.sort(Comparator.comparing((Map.Entry<String, Target> e) -> e.getValue().checkpointKey())
                .thenComparingInt(e -> e.getValue().chunk()));
        Map<String, Target> out = new LinkedHashMap<>();
        for (Map.Entry<String, Target> e : list) {
            out.put(e.getKey(), e.getValue());
        }
        return out;
    }

    /** The reference's chunk for a target: chunks 0 and 1 of text encoder 2's in_proj are exchanged. */
    static Target referenceSwap(Target t) {
        if (t.isChunk() && t.checkpointKey().endsWith(TE2_IN_PROJ) && t.chunk() < 2) {
            return new Target(t.checkpointKey(), 1 - t.chunk(), t.chunks());
        }
        return t;
    }

    /**
     * Pairs and validates. Logs {@code No LoRA layer for ...} (INFO) for checkpoint weights the LoRA does
     * not train. Throws the reference's {@code Target layer not found for LoRA <name>} for a LoRA module
     * the checkpoint has no weight for (or that has no alpha, which the reference requires), and a
     * one-line error for modules resize cannot handle (Tucker, LoHa, LoKr, inconsistent shapes).
     */
    static List<Module> pair(SafetensorsFile ckpt, Map<String, Target> targets, SafetensorsFile file, Reporter reporter) {
        LoraFile lora = LoraFile.of(file);
        Set<String> paired = new HashSet<>();
        List<String> pairedNames = new ArrayList<>();
        for (Map.Entry<String, Target> e : targets.entrySet()) {
            String name = e.getKey();
            Target t = e.getValue();
            LoraModule m = lora.module(name);
            if (m != null && m.hasAlpha()) {
                paired.add(name);
                pairedNames.add(name);
            } else if (reporter.enabled(Reporter.Level.INFO)) {
                // the reference logs the checkpoint key alone, also for a row chunk (base_key[0] of its tuple)
                reporter.log(Reporter.Level.INFO, "INFO:root:No LoRA layer for '" + t.checkpointKey() + "' "
                        + ckpt.info(t.checkpointKey()).shapeTuple() + ", expected LoRA key: '" + name + "'");
            }
        }
        List<String> unpaired = new ArrayList<>(lora.looseKeys());
        for (LoraModule m : lora.modules()) {
            if (!paired.contains(m.name())) {
                unpaired.add(m.name());
            }
        }
        if (!unpaired.isEmpty()) {
            throw new InputException(file.path() + ": Target layer not found for LoRA " + unpaired.stream().sorted()
                    .findFirst().orElseThrow());
        }
        List<Module> modules = new ArrayList<>();
        for (String name : pairedNames) {
            modules.add(validate(ckpt, targets.get(name), lora.module(name).requireSupported(), file.path()));
        }
        return modules;
    }

    /** {@code 'key'} or {@code ('key', i, c)}: the reference prints its index entry with repr. */
    static String baseRepr(Target t) {
        return t.isChunk() ? "('" + t.checkpointKey() + "', " + t.chunk() + ", " + t.chunks() + ")"
                : "'" + t.checkpointKey() + "'";
    }

    /** The reference's log form of a base weight: the key, or the tuple for a row chunk. */
    static String baseLabel(Target t) {
        return t.isChunk() ? baseRepr(t) : t.checkpointKey();
    }

    private static Module validate(SafetensorsFile ckpt, Target t, LoraModule m, java.nio.file.Path loraPath) {
        TensorInfo down = m.tensors().get(LoraModule.DOWN);
        TensorInfo up = m.tensors().get(LoraModule.UP);
        TensorInfo alpha = m.tensors().get(LoraModule.ALPHA);
        TensorInfo dora = m.tensors().get(LoraModule.DORA);
        long rank = m.rank();
        long cols = m.columns();
        TensorInfo baseInfo = ckpt.info(t.checkpointKey());
        long[] bs = baseInfo.shape();
        if (bs[0] % t.chunks() != 0) {
            throw new InputException(t.checkpointKey() + " shape=" + baseInfo.shapeTuple() + " is not divisible in "
                    + t.chunks() + " chunks");
        }
        long rows = bs[0] / t.chunks();
        long baseCols = baseInfo.numel() / Math.max(1, bs[0]);
        if (m.outFeatures() != rows || cols != baseCols) {
            throw new InputException(loraPath + ": module " + m.name() + ": delta is (" + m.outFeatures() + ", "
                    + cols + ") but checkpoint weight " + baseLabel(t) + " is " + baseInfo.shapeTuple()
                    + (t.isChunk() ? " (" + rows + " rows per chunk)" : ""));
        }
        if (rows * cols > Integer.MAX_VALUE - 8 || rank * cols > Integer.MAX_VALUE - 8 || rank > 65536) {
            throw new InputException(loraPath + ": module " + m.name() + ": too large to process (" + rows
                    + " x " + cols + ", rank " + rank + ")");
        }
        long[] ds = down.shape();
        long[] input = java.util.Arrays.copyOfRange(ds, 1, ds.length);
        Base base = new Base(t, baseInfo, (int) rows, (int) cols);
        return new Module(m.name(), base, down, up, alpha, dora, (int) rank, (int) rows, (int) cols, input,
                up.rank() == 4);
    }
}
