package tenmin.lora;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

import tenmin.core.InputException;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;

/**
 * One adapted module of a kohya/LyCORIS LoRA file: its tensors ({@code <name>.lora_down.weight},
 * {@code <name>.lora_up.weight}, {@code <name>.alpha}, optionally {@code <name>.dora_scale}) read from
 * the header only, and the numbers derived from their shapes (postprocess-spec §1.1).
 *
 * <p>Dimension legend: R rank, O output features, I input features, K kernel height/width.
 * {@code down} is {@code [R, I]} (linear) or {@code [R, I, Kh, Kw]} (conv), {@code up} is {@code [O, R]}
 * or {@code [O, R, 1, 1]}; the delta is {@code ΔW = (alpha / R) · up.flatten(1) @ down.flatten(1)},
 * reshaped to {@code [O, I]} or {@code [O, I, Kh, Kw]}. A missing {@code alpha} means alpha = R (scale 1),
 * as kohya and LyCORIS load it.
 *
 * <p>Other LyCORIS algorithms (LoHa {@code hada_*}, LoKr {@code lokr_*}, Tucker {@code lora_mid}, full
 * {@code diff}, norms) are recognised and reported as unsupported ({@link #problem()}); their tensors are
 * still listed, so tools that only move tensors (chop) handle them.
 */
public final class LoraModule {
    /** What a module's tensors say it is. */
    public enum Type {
        /** Plain LoRA on a Linear layer (or a 1×1 conv stored as 2-D). */
        LINEAR,
        /** LoCon on a convolution: {@code down} is 4-D. */
        CONV,
        /** LoRA with a Tucker core ({@code lora_mid.weight}): not supported by these tools. */
        TUCKER,
        /** Any other layout (LoHa, LoKr, full diff, norm, incomplete LoRA): not supported. */
        OTHER
    }

    public static final String DOWN = ".lora_down.weight";
    public static final String UP = ".lora_up.weight";
    public static final String ALPHA = ".alpha";
    public static final String DORA = ".dora_scale";
    public static final String MID = ".lora_mid.weight";

    private final SafetensorsFile file;
    private final String name;
    private final Map<String, TensorInfo> tensors; // suffix (with leading '.') -> header entry, sorted
    private final Type type;
    private final String problem;

    LoraModule(SafetensorsFile file, String name, Map<String, TensorInfo> tensorsBySuffix) {
        this.file = file;
        this.name = name;
        this.tensors = Collections.unmodifiableMap(new TreeMap<>(tensorsBySuffix));
        String why = validate();
        this.problem = why;
        this.type = classify(why);
    }

    private Type classify(String why) {
        if (tensors.containsKey(MID)) {
            return Type.TUCKER;
        }
        if (why != null) {
            return Type.OTHER;
        }
        return tensors.get(DOWN).rank() == 4 ? Type.CONV : Type.LINEAR;
    }

    /** Null when the module is a usable LoRA/LoCon, else why it is not. */
    private String validate() {
        if (tensors.containsKey(MID)) {
            return "Tucker LoCon (lora_mid.weight) is not supported";
        }
        for (String s : tensors.keySet()) {
            if (s.startsWith(".hada_")) {
                return "LoHa modules are not supported";
            }
            if (s.startsWith(".lokr_")) {
                return "LoKr modules are not supported";
            }
        }
        TensorInfo down = tensors.get(DOWN);
        TensorInfo up = tensors.get(UP);
        if (down == null || up == null) {
            return "not a LoRA module: " + (down == null ? "no lora_down.weight" : "no lora_up.weight")
                    + " (tensors " + String.join(", ", tensors.keySet()) + ")";
        }
        for (String s : tensors.keySet()) {
            if (!s.equals(DOWN) && !s.equals(UP) && !s.equals(ALPHA) && !s.equals(DORA)) {
                return "unexpected tensor " + name + s;
            }
        }
        if (!down.dtype().isFloat() || !up.dtype().isFloat()) {
            return "lora_down/lora_up must be floating point, found " + down.dtype() + "/" + up.dtype();
        }
        if (down.rank() != 2 && down.rank() != 4) {
            return "lora_down.weight has shape " + Arrays.toString(down.shape()) + ", expected [r, in] or [r, in, k, k]";
        }
        boolean upConv = up.rank() == 4 && up.dim(2) == 1 && up.dim(3) == 1;
        if (up.rank() != 2 && !upConv) {
            return "lora_up.weight has shape " + Arrays.toString(up.shape()) + ", expected [out, r] or [out, r, 1, 1]";
        }
        if (up.dim(1) != down.dim(0)) {
            return "rank mismatch: lora_down.weight " + Arrays.toString(down.shape()) + " vs lora_up.weight "
                    + Arrays.toString(up.shape());
        }
        if (down.dim(0) == 0 || down.dim(1) == 0 || up.dim(0) == 0) {
            return "empty lora_down/lora_up " + Arrays.toString(down.shape()) + " / " + Arrays.toString(up.shape());
        }
        if (up.rank() == 4 && down.rank() != 4) {
            return "lora_up.weight is 4-D but lora_down.weight is 2-D";
        }
        TensorInfo alpha = tensors.get(ALPHA);
        if (alpha != null && (alpha.numel() != 1 || !(alpha.dtype().isFloat() || alpha.dtype() == StDType.I64
                || alpha.dtype() == StDType.I32))) {
            return "alpha must be a single number, found " + alpha.dtype() + " " + Arrays.toString(alpha.shape());
        }
        TensorInfo dora = tensors.get(DORA);
        if (dora != null && !dora.dtype().isFloat()) {
            return "dora_scale must be floating point, found " + dora.dtype();
        }
        long elements;
        try {
            elements = Math.multiplyExact(up.dim(0), columnsOf(down));
        } catch (ArithmeticException e) {
            elements = Long.MAX_VALUE;
        }
        if (elements > Integer.MAX_VALUE - 8) {
            return "delta of shape [" + up.dim(0) + ", " + columnsOf(down) + "] is too large";
        }
        return null;
    }

    private static long columnsOf(TensorInfo down) {
        long c = 1;
        for (int i = 1; i < down.rank(); i++) {
            c *= down.dim(i);
        }
        return c;
    }

    /** The module name, e.g. {@code lora_unet_input_blocks_4_1_proj_in}. */
    public String name() {
        return name;
    }

    public Type type() {
        return type;
    }

    /** True for usable LoRA/LoCon modules (linear or conv, with or without DoRA). */
    public boolean isSupported() {
        return problem == null;
    }

    /** Null for a usable module, else a one-line reason (unsupported algorithm, inconsistent shapes). */
    public String problem() {
        return problem;
    }

    /** Throws {@link InputException} naming the file and module when the module is not usable. */
    public LoraModule requireSupported() {
        if (problem != null) {
            throw new InputException(file.path() + ": module " + name + ": " + problem);
        }
        return this;
    }

    /** Whether the module carries a DoRA magnitude vector ({@code dora_scale}). */
    public boolean hasDora() {
        return tensors.containsKey(DORA);
    }

    /** A short human label: {@code linear}, {@code conv 3x3}, {@code conv 3x3 DoRA}, {@code LoHa (unsupported)}. */
    public String typeLabel() {
        return switch (type) {
            case LINEAR -> hasDora() ? "linear DoRA" : "linear";
            case CONV -> "conv " + kernelHeight() + "x" + kernelWidth() + (hasDora() ? " DoRA" : "");
            case TUCKER -> "tucker (unsupported)";
            case OTHER -> {
                for (String s : tensors.keySet()) {
                    if (s.startsWith(".hada_")) {
                        yield "loha (unsupported)";
                    }
                    if (s.startsWith(".lokr_")) {
                        yield "lokr (unsupported)";
                    }
                }
                yield "invalid";
            }
        };
    }

    /** Tensor suffixes present ({@code .alpha}, {@code .lora_down.weight}, ...) with their header entries. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** Full tensor keys of this module, sorted. */
    public java.util.List<String> tensorKeys() {
        return tensors.keySet().stream().map(s -> name + s).toList();
    }

    public String downKey() {
        return name + DOWN;
    }

    public String upKey() {
        return name + UP;
    }

    public String alphaKey() {
        return name + ALPHA;
    }

    public String doraKey() {
        return name + DORA;
    }

    private TensorInfo need(String suffix) {
        requireSupported();
        return tensors.get(suffix);
    }

    /** R: rows of {@code lora_down}. */
    public int rank() {
        return (int) need(DOWN).dim(0);
    }

    /** O: rows of {@code lora_up} (output features of the adapted layer). */
    public long outFeatures() {
        return need(UP).dim(0);
    }

    /** I: input features (channels for a conv). */
    public long inFeatures() {
        return need(DOWN).dim(1);
    }

    public int kernelHeight() {
        TensorInfo d = need(DOWN);
        return d.rank() == 4 ? (int) d.dim(2) : 1;
    }

    public int kernelWidth() {
        TensorInfo d = need(DOWN);
        return d.rank() == 4 ? (int) d.dim(3) : 1;
    }

    /** I·Kh·Kw: columns of the flattened {@code down} and of the delta. */
    public int columns() {
        return (int) columnsOf(need(DOWN));
    }

    /** Shape of ΔW: {@code [O, I]} for linear, {@code [O, I, Kh, Kw]} for conv. */
    public long[] deltaShape() {
        long[] down = need(DOWN).shape();
        long[] s = down.clone();
        s[0] = outFeatures();
        return s;
    }

    /** Whether the file stores an {@code alpha} for this module. */
    public boolean hasAlpha() {
        return tensors.containsKey(ALPHA);
    }

    /** The alpha value (as stored, widened to double); the rank when the file has none. */
    public double alpha() {
        requireSupported();
        return hasAlpha() ? file.readScalar(alphaKey()) : rank();
    }

    /** alpha / R: the factor in front of {@code up @ down}. */
    public double scale() {
        return alpha() / rank();
    }

    /** The element type of {@code lora_up} (usually that of every tensor of the file). */
    public StDType dtype() {
        return need(UP).dtype();
    }

    /** {@code lora_up} as fp32, row-major {@code [O, R]}. */
    public float[] readUp() {
        need(UP);
        return file.readFloats(upKey());
    }

    /** {@code lora_down} as fp32, row-major {@code [R, I·Kh·Kw]}. */
    public float[] readDown() {
        need(DOWN);
        return file.readFloats(downKey());
    }

    /** The UNet block in chop's naming ({@code input_blocks.4}), or null (text encoders, non-block UNet). */
    public String block() {
        return SdxlKeyMap.blockOf(name);
    }

    /** True for {@code lora_te1_*}/{@code lora_te2_*} (and other {@code lora_te*}) modules. */
    public boolean isTextEncoder() {
        return name.startsWith("lora_te");
    }

    @Override
    public String toString() {
        return name + " (" + typeLabel() + ")";
    }
}
