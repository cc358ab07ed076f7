package tenmin.formats;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import tenmin.core.PyJson;

/**
 * Writes safetensors files laid out byte for byte as the reference writer does: tensors sorted by dtype
 * (descending, in {@link StDType} order) then by name (UTF-8 bytes ascending), packed without gaps;
 * compact JSON with {@code __metadata__} first and each entry's fields in the order dtype, shape,
 * data_offsets; serde_json string escaping; header padded with spaces to a multiple of 8.
 *
 * <p>Metadata keys are written in insertion order (the reference's order is random, so this is our
 * deterministic choice). Data is streamed: a tensor's bytes are produced only when written, so outputs
 * larger than the heap work. {@link #write(Path)} is atomic.
 */
public final class SafetensorsWriter {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final List<Entry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /** Produces exactly a tensor's little-endian bytes. */
    @FunctionalInterface
    public interface TensorData {
        void writeTo(OutputStream out) throws IOException;
    }

    private record Entry(String name, StDType dtype, long[] shape, long sizeBytes, TensorData data) {
    }

    /** Adds (or replaces) a metadata entry; insertion order is kept. */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds all entries of {@code map} in its iteration order. */
    public SafetensorsWriter metadata(Map<String, String> map) {
        metadata.putAll(map);
        return this;
    }

    /** Adds a tensor whose bytes {@code data} will produce when the file is written. */
    public SafetensorsWriter add(String name, StDType dtype, long[] shape, TensorData data) {
        if (!names.add(name)) {
            throw new IllegalArgumentException("duplicate tensor name " + name);
        }
        if (name.equals("__metadata__")) {
            throw new IllegalArgumentException("reserved tensor name __metadata__");
        }
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(name + ": negative dimension in " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        entries.add(new Entry(name, dtype, shape.clone(), Math.multiplyExact(n, dtype.sizeBytes()), data));
        return this;
    }

    /** Adds fp32 values stored as {@code dtype} (F32, F16, BF16 or F8_E4M3, rounded to nearest even; F64 widened). */
    public SafetensorsWriter addFloats(String name, StDType dtype, long[] shape, float[] values) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " has " + n
                    + " elements but " + values.length + " values were given");
        }
        return add(name, dtype, shape, out -> writeFloats(out, values, dtype));
    }

    /** Adds raw little-endian bytes (for example a view of another mapped file). */
    public SafetensorsWriter addBytes(String name, StDType dtype, long[] shape, MemorySegment bytes) {
        return add(name, dtype, shape, out -> writeSegment(out, bytes));
    }

    /** Adds a copy of a tensor of an open file, bytes unchanged. */
    public SafetensorsWriter copy(SafetensorsFile from, String name) {
        return copy(from, name, name);
    }

    /** Adds a copy of tensor {@code name} of {@code from} under {@code newName}, bytes unchanged. */
    public SafetensorsWriter copy(SafetensorsFile from, String name, String newName) {
        TensorInfo t = from.info(name);
        return add(newName, t.dtype(), t.shape(), out -> {
            writeSegment(out, from.segment(name));
            from.release(name); // keep resident memory small when copying multi-GB files
        });
    }

    /** Adds 64-bit integers (I64). */
    public SafetensorsWriter addLongs(String name, long[] shape, long[] values) {
        return add(name, StDType.I64, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
            b.asLongBuffer().put(values);
            out.write(b.array());
        });
    }

    /** The header JSON (before padding), in final layout. */
    public String headerJson() {
        StringBuilder sb = new StringBuilder(64 + entries.size() * 96);
        sb.append('{');
        boolean first = true;
        if (!metadata.isEmpty()) {
            sb.append("\"__metadata__\":{");
            boolean firstMeta = true;
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (!firstMeta) {
                    sb.append(',');
                }
                firstMeta = false;
                appendJsonString(sb, m.getKey());
                sb.append(':');
                appendJsonString(sb, m.getValue());
            }
            sb.append('}');
            first = false;
        }
        long offset = 0;
        for (Entry e : sorted()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            appendJsonString(sb, e.name);
            sb.append(":{\"dtype\":\"").append(e.dtype.name()).append("\",\"shape\":[");
            for (int i = 0; i < e.shape.length; i++) {
                sb.append(i == 0 ? "" : ",").append(e.shape[i]);
            }
            sb.append("],\"data_offsets\":[").append(offset).append(',').append(offset + e.sizeBytes).append("]}");
            offset += e.sizeBytes;
        }
        return sb.append('}').toString();
    }

    /** The tensor names in the order their bytes are written (and their data callbacks called). */
    public List<String> tensorOrder() {
        List<String> order = new ArrayList<>(entries.size());
        for (Entry e : sorted()) {
            order.add(e.name);
        }
        return order;
    }

    private List<Entry> sorted() {
        List<Entry> list = new ArrayList<>(entries);
        list.sort(Comparator.<Entry>comparingInt(e -> -e.dtype.ordinal())
                .thenComparing((a, b) -> Arrays.compareUnsigned(utf8(a.name), utf8(b.name))));
        return list;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Writes the complete file to {@code out} (not atomic; see {@link #write(Path)}). */
    public void writeTo(OutputStream out) throws IOException {
        byte[] header = utf8(headerJson());
        int pad = (8 - header.length % 8) % 8;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length + pad);
        out.write(len.array());
        out.write(header);
        for (int i = 0; i < pad; i++) {
            out.write(' ');
        }
        for (Entry e : sorted()) {
            CountingStream counter = new CountingStream(out);
            e.data.writeTo(counter);
            if (counter.count != e.sizeBytes) {
                throw new IllegalStateException("tensor " + e.name + " produced " + counter.count + " bytes, expected "
                        + e.sizeBytes + " (" + e.dtype + " " + Arrays.toString(e.shape) + ")");
            }
        }
        out.flush();
    }

    /** Writes the file atomically to {@code target}. */
    public void write(Path target) throws IOException {
        AtomicFile.write(target, this::writeTo);
    }

    /** Writes fp32 values as {@code dtype} little-endian bytes, in chunks. */
    public static void writeFloats(OutputStream out, float[] values, StDType dtype) throws IOException {
        writeFloats(out, values, 0, values.length, dtype);
    }

    /** {@link #writeFloats(OutputStream, float[], StDType)} of {@code values[from, to)}. */
    public static void writeFloats(OutputStream out, float[] values, int from, int to, StDType dtype) throws IOException {
        if (dtype == StDType.F32) {
            writeF32(out, values, from, to);
            return;
        }
        int chunk = Math.max(1, Math.min(to - from, 1 << 16)); // a scalar alpha needs no 128 KB buffer
        ByteBuffer b = ByteBuffer.allocate(chunk * dtype.sizeBytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (int start = from; start < to; start += chunk) {
            int end = Math.min(to, start + chunk);
            b.clear();
            switch (dtype) {
                case F32 -> {
                    for (int i = start; i < end; i++) {
                        b.putFloat(values[i]);
                    }
                }
                case F16 -> {
                    for (int i = start; i < end; i++) {
                        b.putShort(Half.f32ToF16(values[i]));
                    }
                }
                case BF16 -> {
                    for (int i = start; i < end; i++) {
                        b.putShort(Half.f32ToBf16(values[i]));
                    }
                }
                case F64 -> {
                    for (int i = start; i < end; i++) {
                        b.putDouble(values[i]);
                    }
                }
                case F8_E4M3 -> {
                    for (int i = start; i < end; i++) {
                        b.put(Fp8E4m3.encode(values[i]));
                    }
                }
                default -> throw new IllegalArgumentException("cannot store floats as " + dtype);
            }
            out.write(b.array(), 0, b.position());
        }
    }

    /**
     * fp32 little-endian by bulk copies (memory speed: 4x the value-by-value buffer on the 2-core machine, which
     * matters for the 1.4 GB training states of the recipe).
     */
    private static void writeF32(OutputStream out, float[] values, int from, int to) throws IOException {
        byte[] buf = new byte[4 * Math.max(1, Math.min(to - from, 1 << 18))];
        MemorySegment dst = MemorySegment.ofArray(buf);
        MemorySegment src = MemorySegment.ofArray(values);
        int per = buf.length / 4;
        for (int start = from; start < to; start += per) {
            int n = Math.min(per, to - start);
            MemorySegment.copy(src, ValueLayout.JAVA_FLOAT, 4L * start, dst, F32_LE, 0, n);
            out.write(buf, 0, 4 * n);
        }
    }

    /** Copies a memory segment's bytes to a stream in chunks. */
    public static void writeSegment(OutputStream out, MemorySegment s) throws IOException {
        byte[] buf = new byte[(int) Math.min(1 << 20, Math.max(1, s.byteSize()))];
        for (long off = 0; off < s.byteSize(); off += buf.length) {
            int n = (int) Math.min(buf.length, s.byteSize() - off);
            MemorySegment.copy(s, ValueLayout.JAVA_BYTE, off, buf, 0, n);
            out.write(buf, 0, n);
        }
    }

    /** serde_json escaping: quote, backslash, \\n \\r \\t \\b \\f, other controls as a lowercase backslash-u00xx escape. */
    static void appendJsonString(StringBuilder sb, String s) {
        PyJson.appendString(sb, s, false);
    }

    private static final class CountingStream extends OutputStream {
        private final OutputStream out;
        long count;

        CountingStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }
    }
}
