package tenmin.formats;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import com.fasterxml.jackson.core.JsonProcessingException;

import tenmin.core.InputException;

/**
 * A safetensors file opened for reading: the header is parsed and validated at open, the data is
 * memory-mapped and read lazily per tensor (files of many GB never enter the heap).
 *
 * <p>Layout: 8-byte little-endian header length N, N bytes of JSON ({@code __metadata__} string map and
 * one {@code {"dtype","shape","data_offsets"}} object per tensor), then the data section. Any malformed
 * file is rejected with an {@link InputException} naming the file: header length past the end, header
 * not UTF-8 JSON, unknown dtype, negative or non-integer shape entries, offsets that overlap, leave gaps
 * or run past the end, byte ranges that disagree with dtype and shape, duplicate names. Nothing is
 * allocated before the claimed sizes are checked against the file size.
 *
 * <p>Thread-safe for reading; {@link #close()} unmaps the file (idempotent).
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses headers above 100 MB; so do we. */
    public static final long MAX_HEADER_BYTES = 100L * 1000 * 1000;

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble DOUBLE_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final long headerBytes;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, TensorInfo> tensors; // sorted by name
    private final List<TensorInfo> fileOrder;      // sorted by offset
    private volatile boolean closed;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file, long headerBytes,
                            Map<String, String> metadata, Map<String, TensorInfo> tensors, List<TensorInfo> fileOrder) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.headerBytes = headerBytes;
        this.dataStart = 8 + headerBytes;
        this.metadata = metadata;
        this.tensors = tensors;
        this.fileOrder = fileOrder;
    }

    /** Opens and validates {@code path}; throws {@link InputException} for a missing or malformed file. */
    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                long size = ch.size();
                seg = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            SafetensorsFile f = parse(path, arena, seg);
            arena = null; // owned by f now
            return f;
        } catch (NoSuchFileException e) {
            throw new InputException(path + ": no such file");
        } catch (IOException e) {
            throw new InputException(path + ": cannot read: " + e.getMessage(), e);
        } finally {
            if (arena != null) {
                arena.close();
            }
        }
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment seg) {
        long size = seg.byteSize();
        if (size < 8) {
            throw bad(path, "file is " + size + " bytes, shorter than the 8-byte header length");
        }
        long n = seg.get(LONG_LE, 0);
        if (n < 0 || n > size - 8) {
            throw bad(path, "header length " + Long.toUnsignedString(n) + " runs past the end of the file (" + size + " bytes)");
        }
        if (n > MAX_HEADER_BYTES) {
            throw bad(path, "header length " + n + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
        }
        if (n < 2) {
            throw bad(path, "header of " + n + " bytes cannot hold a JSON object");
        }
        byte[] header = seg.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(header)).toString();
        } catch (CharacterCodingException e) {
            throw bad(path, "header is not valid UTF-8");
        }
        Object parsed = JsonTree.parseFast(text); // null: Jackson parses it, or says what is wrong
        try {
            if (parsed == null) {
                parsed = JsonTree.parse(text);
            }
        } catch (JsonProcessingException e) {
            throw bad(path, "header is not valid JSON: " + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw bad(path, "header is not valid JSON: " + firstLine(e.getMessage()));
        }
        if (!(parsed instanceof Map<?, ?> root)) {
            throw bad(path, "header is not a JSON object");
        }
        long dataBytes = size - 8 - n;
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new TreeMap<>();
        for (Map.Entry<?, ?> e : root.entrySet()) {
            String name = (String) e.getKey();
            Object v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!(v instanceof Map<?, ?> meta)) {
                    throw bad(path, "__metadata__ is not an object");
                }
                for (Map.Entry<?, ?> m : meta.entrySet()) {
                    if (!(m.getValue() instanceof String text1)) {
                        throw bad(path, "__metadata__ value of \"" + m.getKey() + "\" is not a string");
                    }
                    metadata.put((String) m.getKey(), text1);
                }
                continue;
            }
            tensors.put(name, tensorInfo(path, name, v, dataBytes));
        }
        List<TensorInfo> byOffset = new ArrayList<>(tensors.values());
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        for (TensorInfo t : byOffset) {
            if (t.begin() < expected) {
                throw bad(path, "tensor \"" + t.name() + "\" overlaps the previous tensor (offset " + t.begin()
                        + " < " + expected + ")");
            }
            if (t.begin() > expected) {
                throw bad(path, "gap in the data section before tensor \"" + t.name() + "\" (offset " + t.begin()
                        + ", expected " + expected + ")");
            }
            expected = t.end();
        }
        if (expected != dataBytes) {
            throw bad(path, "data section is " + dataBytes + " bytes but the tensors cover " + expected
                    + (expected < dataBytes ? " (trailing bytes)" : ""));
        }
        return new SafetensorsFile(path, arena, seg, n, Collections.unmodifiableMap(metadata),
                Collections.unmodifiableMap(tensors), List.copyOf(byOffset));
    }

    private static TensorInfo tensorInfo(Path path, String name, Object value, long dataBytes) {
        if (!(value instanceof Map<?, ?> v)) {
            throw bad(path, where(name) + " is not an object");
        }
        Object dt = v.get("dtype");
        Object sh = v.get("shape");
        Object off = v.get("data_offsets");
        if (dt == null || sh == null || off == null) {
            throw bad(path, where(name) + " lacks " + (dt == null ? "dtype" : sh == null ? "shape" : "data_offsets"));
        }
        StDType dtype = dt instanceof String code ? StDType.parse(code) : null;
        if (dtype == null) {
            throw bad(path, where(name) + " has unknown dtype " + JsonTree.text(dt));
        }
        if (!(sh instanceof List<?> dims)) {
            throw bad(path, where(name) + " shape is not an array");
        }
        long[] shape = new long[dims.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            Object d = dims.get(i);
            if (!(d instanceof Long dim) || dim < 0) {
                throw bad(path, where(name) + " has an invalid shape entry " + JsonTree.text(d));
            }
            shape[i] = dim;
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException e) {
                throw bad(path, where(name) + " shape " + JsonTree.text(sh) + " overflows");
            }
        }
        if (!(off instanceof List<?> offsets) || offsets.size() != 2 || !(offsets.get(0) instanceof Long)
                || !(offsets.get(1) instanceof Long)) {
            throw bad(path, where(name) + " data_offsets must be two integers, found " + JsonTree.text(off));
        }
        long begin = (Long) offsets.get(0);
        long end = (Long) offsets.get(1);
        if (begin < 0 || end < begin) {
            throw bad(path, where(name) + " has invalid data_offsets [" + begin + "," + end + "]");
        }
        if (end > dataBytes) {
            throw bad(path, where(name) + " data_offsets [" + begin + "," + end + "] run past the end of the data section ("
                    + dataBytes + " bytes)");
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(numel, dtype.sizeBytes());
        } catch (ArithmeticException e) {
            throw bad(path, where(name) + " is too large");
        }
        if (end - begin != bytes) {
            throw bad(path, where(name) + " is " + dtype + " " + JsonTree.text(sh) + " = " + bytes + " bytes but data_offsets span "
                    + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /** How messages name a tensor (built only when there is something to report). */
    private static String where(String name) {
        return "tensor \"" + name + "\"";
    }

    private static InputException bad(Path path, String what) {
        return new InputException(path + ": not a valid safetensors file: " + what);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map in file order (empty when the file has none). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Whether the header has a {@code __metadata__} entry at all. */
    public boolean hasMetadata() {
        return !metadata.isEmpty();
    }

    /** Tensor names, sorted (as the reference's {@code keys()}). */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    /** Tensors in file (offset) order. */
    public List<TensorInfo> tensorsInFileOrder() {
        return fileOrder;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public int size() {
        return tensors.size();
    }

    /** The header entry of {@code name}; {@link InputException} naming the file when absent. */
    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new InputException(path + ": no tensor named \"" + name + "\"");
        }
        return t;
    }

    /** Header length N (the JSON, padding included). */
    public long headerBytes() {
        return headerBytes;
    }

    /** File offset where the data section starts (8 + N). */
    public long dataStart() {
        return dataStart;
    }

    /** The whole mapped file. */
    public MemorySegment fileSegment() {
        checkOpen();
        return file;
    }

    /** The raw little-endian bytes of one tensor, a view of the mapped file (valid until close). */
    public MemorySegment segment(String name) {
        checkOpen();
        TensorInfo t = info(name);
        return file.asSlice(dataStart + t.begin(), t.sizeBytes());
    }

    /**
     * Drops the pages of tensor {@code name} from this process's resident memory (madvise DONTNEED via
     * {@link MemorySegment#unload()}); the data stays readable and is paged in again on demand. Call it
     * after processing each tensor of a multi-GB file so resident memory stays small (touched pages of a
     * mapping otherwise count towards the resident set until the file is closed).
     */
    public void release(String name) {
        checkOpen();
        TensorInfo t = info(name);
        if (t.sizeBytes() > 0 && file.isMapped()) {
            file.asSlice(dataStart + t.begin(), t.sizeBytes()).unload();
        }
    }

    /** The tensor converted to fp32 (F8_E4M3, F16, BF16, F32, F64, and integer types by value). */
    public float[] readFloats(String name) {
        TensorInfo t = info(name);
        float[] out = new float[checkedNumel(t)];
        readFloats(name, out, 0);
        return out;
    }

    /** Reads the tensor, converted to fp32, into {@code dst[offset ...]}. */
    public void readFloats(String name, float[] dst, int offset) {
        TensorInfo t = info(name);
        int n = checkedNumel(t);
        MemorySegment s = segment(name);
        convertToFloats(s, t.dtype(), dst, offset, n, name);
    }

    /** Converts {@code n} little-endian elements of {@code type} at the start of {@code s} to fp32. */
    public static void convertToFloats(MemorySegment s, StDType type, float[] dst, int offset, int n, String name) {
        switch (type) {
            case F32 -> MemorySegment.copy(s, FLOAT_LE, 0, dst, offset, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = Float.float16ToFloat(s.get(SHORT_LE, 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = Float.intBitsToFloat((s.get(SHORT_LE, 2L * i) & 0xFFFF) << 16);
                }
            }
            case F8_E4M3 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = Fp8E4m3.decode(s.get(ValueLayout.JAVA_BYTE, i));
                }
            }
            case F64 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = (float) s.get(DOUBLE_LE, 8L * i);
                }
            }
            case I64 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = s.get(LONG_LE, 8L * i);
                }
            }
            case I32 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = s.get(INT_LE, 4L * i);
                }
            }
            case I16 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = s.get(SHORT_LE, 2L * i);
                }
            }
            case I8 -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = s.get(ValueLayout.JAVA_BYTE, i);
                }
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                }
            }
            default -> throw new InputException("tensor \"" + name + "\" has dtype " + type
                    + ", which cannot be converted to float");
        }
    }

    /** An integer tensor (I64, I32, I16, I8, U8, BOOL) as longs. */
    public long[] readLongs(String name) {
        TensorInfo t = info(name);
        int n = checkedNumel(t);
        MemorySegment s = segment(name);
        long[] out = new long[n];
        switch (t.dtype()) {
            case I64 -> MemorySegment.copy(s, LONG_LE, 0, out, 0, n);
            case I32 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(INT_LE, 4L * i);
                }
            }
            case I16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(SHORT_LE, 2L * i);
                }
            }
            case I8 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(ValueLayout.JAVA_BYTE, i);
                }
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) {
                    out[i] = s.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                }
            }
            default -> throw new InputException(path + ": tensor \"" + name + "\" is " + t.dtype() + ", not an integer type");
        }
        return out;
    }

    /** A scalar (any shape with one element) as a double, e.g. a LoRA {@code alpha}. */
    public double readScalar(String name) {
        TensorInfo t = info(name);
        if (t.numel() != 1) {
            throw new InputException(path + ": tensor \"" + name + "\" has shape " + java.util.Arrays.toString(t.shape())
                    + ", expected a single value");
        }
        MemorySegment s = segment(name);
        return switch (t.dtype()) {
            case F64 -> s.get(DOUBLE_LE, 0);
            case I64, I32, I16, I8, U8, BOOL -> readLongs(name)[0];
            default -> {
                float[] one = new float[1];
                convertToFloats(s, t.dtype(), one, 0, 1, name);
                yield one[0];
            }
        };
    }

    private int checkedNumel(TensorInfo t) {
        long n = t.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new InputException(path + ": tensor \"" + t.name() + "\" has " + n + " elements, too many to load at once");
        }
        return (int) n;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
