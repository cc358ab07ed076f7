package tenmin.engine.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import tenmin.engine.api.DType;
import tenmin.engine.api.MemoryMeter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;

/**
 * A tensor of the {@code cpu} backend: a {@code float[]} for the floating dtypes (bf16/fp16 tensors
 * hold fp32 values already rounded to their precision) or a {@code long[]} for I64, row-major, the
 * whole array. A view ({@code reshape}) shares the array and the storage account of its base: the bytes
 * count once, while either is open. Frozen weights read from fp16/bf16 files may instead keep their 16-bit
 * values in native memory (the compact, read-only form; {@link #data()} converts on each read, and a view of
 * one holds its own converted copy). F8_E4M3 tensors always have the compact form: one byte a value, each read
 * decoded (a 256-entry table), never written.
 */
final class CpuTensor extends Tensor {
    private final CpuBackend backend;
    private final MemoryMeter.Storage storage;
    private float[] data;
    private long[] longs;
    /**
     * Compact storage of a read-only tensor: an F32 tensor whose values are all fp16, bf16 or fp8 numbers, or an
     * F8_E4M3 tensor; off the Java heap (a multi-MB array there would be a G1 "humongous" object wasting most of a
     * region); else null.
     */
    private MemorySegment halves;
    private Arena halvesArena;
    private StDType halvesType;

    /** A tensor on new storage ({@code base} null) or a view sharing {@code base}'s arrays and storage account. */
    CpuTensor(CpuBackend backend, Scope owner, Shape shape, DType dtype, float[] data, long[] longs, CpuTensor base) {
        super(owner, shape, dtype);
        this.backend = backend;
        this.data = data;
        this.longs = longs;
        this.storage = backend.allocated(this, base);
    }

    /**
     * A read-only tensor of {@code dtype} (F32, or F8_E4M3 itself) stored as the little-endian numbers of
     * {@code bytes} ({@code stored}: F16, BF16 or F8_E4M3), copied into native memory that {@link #release()} frees:
     * half (a quarter) of the memory of a float array for values that are exact in 16 (8) bits, as every weight of
     * an fp16 or bf16 checkpoint is, and none of it on the Java heap. {@link #data()} converts on each call (exactly),
     * so ops read it like any other tensor; writing into it is refused ({@link #writable}).
     */
    CpuTensor(CpuBackend backend, Scope owner, Shape shape, MemorySegment bytes, DType stored, DType dtype) {
        super(owner, shape, dtype);
        this.backend = backend;
        this.halvesArena = Arena.ofShared();
        this.halves = halvesArena.allocate(bytes.byteSize(), 64);
        MemorySegment.copy(bytes, 0, halves, 0, bytes.byteSize());
        this.halvesType = stored.stDType();
        this.storage = backend.allocated(this, null);
    }

    /** The compact form's bytes (read-only; null otherwise). */
    MemorySegment compactBytes() {
        checkOpen();
        return halves;
    }

    /** True for the compact read-only form. */
    boolean compact() {
        return halves != null;
    }

    /** The 8- or 16-bit type of the compact form (null otherwise). */
    StDType compactType() {
        return halves != null ? halvesType : null;
    }

    /** Bytes of storage this tensor allocated (1 or 2 a value in the compact form). */
    long storageBytes() {
        return halves != null ? halves.byteSize() : sizeBytes();
    }

    /** The float storage, for writing: throws for a compact (read-only) tensor, like {@link #data()} otherwise. */
    float[] writable(String op) {
        if (halves != null) {
            throw new IllegalArgumentException(op + ": tensor " + describe() + " is read-only (" + halvesType
                    + " storage of frozen weights)");
        }
        return data();
    }

    /** The float storage; throws when closed or integer. A compact tensor gives a fresh converted copy. */
    float[] data() {
        checkOpen();
        if (halves != null) {
            float[] out = new float[(int) (halves.byteSize() / halvesType.sizeBytes())];
            SafetensorsFile.convertToFloats(halves, halvesType, out, 0, out.length, describe());
            return out;
        }
        if (data == null) {
            throw new IllegalArgumentException("tensor " + describe() + " is integer; a floating tensor is required");
        }
        return data;
    }

    /** The long storage; throws when closed or floating. */
    long[] longs() {
        checkOpen();
        if (longs == null) {
            throw new IllegalArgumentException("tensor " + describe() + " is floating; an I64 tensor is required");
        }
        return longs;
    }

    /** The storage account shared with views. */
    MemoryMeter.Storage storage() {
        return storage;
    }

    @Override
    protected void release() {
        backend.released(this);
        data = null;
        longs = null;
        if (halvesArena != null) {
            halvesArena.close();
            halvesArena = null;
        }
        halves = null;
    }
}
