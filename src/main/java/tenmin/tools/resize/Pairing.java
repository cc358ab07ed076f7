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
    private static final List<String> STRIPPED_SUFFIXES = List.of(".alpha", ".lora_down.weight", ".lora_up.weight",
            ".dora_scale");

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
     * the checkpoint has no weight for, and a one-line error for malformed modules.
     */
    static List<Module> pair(SafetensorsFile ckpt, Map<String, Target> targets, SafetensorsFile lora, Reporter reporter) {
        List<Module> modules = new ArrayList<>();
        Set<String> paired = new HashSet<>();
        List<String> pairedNames = new ArrayList<>();
        for (Map.Entry<String, Target> e : targets.entrySet()) {
            String name = e.getKey();
            Target t = e.getValue();
            if (lora.contains(name + ".alpha")) {
                paired.add(name);
                pairedNames.add(name);
            } else if (reporter.enabled(Reporter.Level.INFO)) {
                reporter.log(Reporter.Level.INFO, "INFO:root:No LoRA layer for " + baseRepr(t) + " "
                        + ckpt.info(t.checkpointKey()).shapeTuple() + ", expected LoRA key: '" + name + "'");
            }
        }
        for (String key : lora.names()) {
            if (key.endsWith(".lora_mid.weight") && paired.contains(key.substring(0, key.length() - 16))) {
                throw new InputException(lora.path() + ": module " + key.substring(0, key.length() - 16)
                        + " is a Tucker-decomposed LoCon (" + key + "), which resize does not support");
            }
        }
        for (String key : lora.names()) {
            String name = key;
            for (String suffix : STRIPPED_SUFFIXES) {
                if (name.endsWith(suffix)) {
                    name = name.substring(0, name.length() - suffix.length());
                }
            }
            if (!paired.contains(name)) {
                String hint = targets.isEmpty() ? " (the checkpoint " + ckpt.path()
                        + " has no SDXL single-file weights; check the argument order: CHECKPOINT first, then LoRAs)"
                        : "";
                throw new InputException(lora.path() + ": Target layer not found for LoRA " + name + hint);
            }
        }
        for (String name : pairedNames) {
            modules.add(validate(ckpt, targets.get(name), lora, name));
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

    private static Module validate(SafetensorsFile ckpt, Target t, SafetensorsFile lora, String name) {
        String where = lora.path() + ": module " + name;
        TensorInfo down = require(lora, name + ".lora_down.weight", where);
        TensorInfo up = require(lora, name + ".lora_up.weight", where);
        TensorInfo alpha = lora.info(name + ".alpha");
        TensorInfo dora = lora.contains(name + ".dora_scale") ? lora.info(name + ".dora_scale") : null;
        for (TensorInfo ti : dora == null ? List.of(down, up, alpha) : List.of(down, up, alpha, dora)) {
            if (!ti.dtype().isFloat()) {
                throw new InputException(lora.path() + ": tensor \"" + ti.name() + "\" is " + ti.dtype()
                        + ", expected a float type (F16, BF16, F32, F64)");
            }
        }
        if (alpha.numel() != 1) {
            throw new InputException(lora.path() + ": tensor \"" + alpha.name() + "\" has shape "
                    + alpha.shapeTuple() + ", expected a single value");
        }
        long[] ds = down.shape();
        long[] us = up.shape();
        if (ds.length != 2 && ds.length != 4) {
            throw new InputException(where + ": lora_down has shape " + down.shapeTuple()
                    + ", expected (rank, in) or (rank, in, kh, kw)");
        }
        boolean upIs4d = us.length == 4;
        if (!(us.length == 2 || (upIs4d && us[2] == 1 && us[3] == 1))) {
            throw new InputException(where + ": lora_up has shape " + up.shapeTuple()
                    + ", expected (out, rank) or (out, rank, 1, 1)");
        }
        long rank = ds[0];
        if (rank < 1 || us[1] != rank) {
            throw new InputException(where + ": lora_down " + down.shapeTuple() + " and lora_up " + up.shapeTuple()
                    + " disagree on the rank");
        }
        long cols = 1;
        for (int i = 1; i < ds.length; i++) {
            cols *= ds[i];
        }
        TensorInfo baseInfo = ckpt.info(t.checkpointKey());
        long[] bs = baseInfo.shape();
        if (bs[0] % t.chunks() != 0) {
            throw new InputException(t.checkpointKey() + " shape=" + baseInfo.shapeTuple() + " is not divisible in "
                    + t.chunks() + " chunks");
        }
        long rows = bs[0] / t.chunks();
        long baseCols = baseInfo.numel() / Math.max(1, bs[0]);
        if (us[0] != rows || cols != baseCols) {
            throw new InputException(where + ": delta is (" + us[0] + ", " + cols + ") but checkpoint weight "
                    + baseLabel(t) + " is " + baseInfo.shapeTuple() + (t.isChunk() ? " (" + rows + " rows per chunk)" : ""));
        }
        if (rows * cols > Integer.MAX_VALUE - 8 || rank * cols > Integer.MAX_VALUE - 8 || rank > 65536) {
            throw new InputException(where + ": too large to process (" + rows + " x " + cols + ", rank " + rank + ")");
        }
        long[] input = java.util.Arrays.copyOfRange(ds, 1, ds.length);
        Base base = new Base(t, baseInfo, (int) rows, (int) cols);
        return new Module(name, base, down, up, alpha, dora, (int) rank, (int) rows, (int) cols, input, upIs4d);
    }

    private static TensorInfo require(SafetensorsFile lora, String key, String where) {
        if (!lora.contains(key)) {
            throw new InputException(where + " has no tensor " + key);
        }
        return lora.info(key);
    }
}
