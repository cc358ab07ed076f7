package tenmin.engine.api;

/**
 * The element type of a tensor.
 *
 * <p>Floating types: {@link #F32}, {@link #BF16}, {@link #F16}, and {@link #F8_E4M3}, a storage-only type
 * ({@link #isStorageOnly}). {@link #I64} holds token ids and integer timesteps. Ops never promote: inputs of one op
 * share a floating dtype and model code casts explicitly ({@link Backend#cast}). The {@code cpu} backend computes in
 * fp32 and rounds results to bf16/fp16 when the output dtype is one of those (round to nearest even), so it emulates
 * the storage precision of the GPU path.
 */
public enum DType {
    F32(4, "f32"),
    BF16(2, "bf16"),
    F16(2, "f16"),
    /**
     * float8 e4m3fn ({@code torch.float8_e4m3fn}; {@link tenmin.formats.Fp8E4m3}): frozen weights stored in one byte
     * (kohya's {@code --fp8_base}) and cast to the compute dtype where they are used, as PyTorch's autocast does.
     */
    F8_E4M3(1, "f8_e4m3"),
    I64(8, "i64");

    private final int sizeBytes;
    private final String shortName;

    DType(int sizeBytes, String shortName) {
        this.sizeBytes = sizeBytes;
        this.shortName = shortName;
    }

    /** Bytes per element. */
    public int sizeBytes() {
        return sizeBytes;
    }

    /** True for F32, BF16, F16 and F8_E4M3. */
    public boolean isFloat() {
        return this != I64;
    }

    /**
     * True for F8_E4M3: tensors hold values in it, but no op computes in it. Backends accept it in {@link Backend#cast}
     * (both ways), the host copies ({@code fromHost}, {@code fromHostBytes}, {@code toHost}) and {@link Backend#narrow};
     * every other op refuses it.
     */
    public boolean isStorageOnly() {
        return this == F8_E4M3;
    }

    /** Lower-case name as in traces and messages: {@code f32}, {@code bf16}, {@code f16}, {@code f8_e4m3}, {@code i64}. */
    public String shortName() {
        return shortName;
    }

    /**
     * Parses {@code f32}/{@code float32}, {@code bf16}/{@code bfloat16}, {@code f16}/{@code fp16}/{@code float16},
     * {@code f8_e4m3}/{@code float8_e4m3fn}, {@code i64}.
     */
    public static DType parse(String name) {
        switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32", "float" -> {
                return F32;
            }
            case "bf16", "bfloat16" -> {
                return BF16;
            }
            case "f16", "fp16", "float16", "half" -> {
                return F16;
            }
            case "f8_e4m3", "float8_e4m3fn" -> {
                return F8_E4M3;
            }
            case "i64", "int64", "long" -> {
                return I64;
            }
            default -> throw new IllegalArgumentException("unknown dtype '" + name
                    + "' (expected f32, bf16, f16, f8_e4m3 or i64)");
        }
    }

    /** The dtype of a safetensors element type (F32, BF16, F16, F8_E4M3, I64); other types throw naming the type. */
    public static DType of(tenmin.formats.StDType type) {
        return switch (type) {
            case F32 -> F32;
            case BF16 -> BF16;
            case F16 -> F16;
            case F8_E4M3 -> F8_E4M3;
            case I64 -> I64;
            default -> throw new IllegalArgumentException("safetensors dtype " + type + " has no engine dtype"
                    + " (expected F32, BF16, F16, F8_E4M3 or I64)");
        };
    }

    /** The safetensors element type of the same name ({@link #of} backwards). */
    public tenmin.formats.StDType stDType() {
        return switch (this) {
            case F32 -> tenmin.formats.StDType.F32;
            case BF16 -> tenmin.formats.StDType.BF16;
            case F16 -> tenmin.formats.StDType.F16;
            case F8_E4M3 -> tenmin.formats.StDType.F8_E4M3;
            case I64 -> tenmin.formats.StDType.I64;
        };
    }

    @Override
    public String toString() {
        return shortName;
    }
}
