package tenmin.formats;

/**
 * The element types of the safetensors format, in the order of the reference (Rust) enum.
 *
 * <p>The declaration order matters: the reference writer sorts tensors by this order, descending
 * (largest alignment first), then by name; {@link SafetensorsWriter} does the same.
 */
public enum StDType {
    BOOL(1),
    U8(1),
    I8(1),
    F8_E5M2(1),
    F8_E4M3(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    C64(8),
    F64(8),
    I64(8),
    U64(8);

    private final int sizeBytes;

    StDType(int sizeBytes) {
        this.sizeBytes = sizeBytes;
    }

    /** Bytes per element. */
    public int sizeBytes() {
        return sizeBytes;
    }

    /**
     * True for the floating types {@link SafetensorsFile#readFloats} converts (F8_E4M3, F16, BF16, F32, F64); not
     * F8_E5M2, which nothing here reads.
     */
    public boolean isFloat() {
        return this == F8_E4M3 || this == F16 || this == BF16 || this == F32 || this == F64;
    }

    /** The type for a header string such as {@code "F16"}, or null when unknown. */
    public static StDType parse(String name) {
        for (StDType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }
}
