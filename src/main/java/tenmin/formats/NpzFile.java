package tenmin.formats;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import tenmin.core.InputException;

/**
 * NumPy's {@code .npz} archives as {@code numpy.savez} writes them (a zip of {@code <key>.npy} entries,
 * stored uncompressed): the latent cache files kohya sd-scripts keeps next to each image
 * ({@code latents}, {@code original_size}, {@code crop_ltrb}, {@code latents_flipped}).
 *
 * <p>Each entry is an NPY v1.0 array: magic {@code \x93NUMPY}, version 1.0, a little-endian uint16 header
 * length, then a Python dict literal {@code {'descr': '<f4', 'fortran_order': False, 'shape': (4, 64, 64), }}
 * padded with spaces and a newline so the data starts at a multiple of 64, then the C-order data. Read:
 * little-endian {@code f2 f4 f8 i4 i8 u1} (also {@code |u1}, {@code |b1}), C order, stored or deflated
 * entries; written: {@code <f4}, {@code <f8}, {@code <i8}, stored, atomically.
 */
public final class NpzFile {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private NpzFile() {
    }

    /** Element types of the arrays this class reads and writes, by NumPy {@code descr}. */
    public enum Kind {
        F16("<f2", 2), F32("<f4", 4), F64("<f8", 8), I32("<i4", 4), I64("<i8", 8), U8("|u1", 1), BOOL("|b1", 1);

        private final String descr;
        private final int sizeBytes;

        Kind(String descr, int sizeBytes) {
            this.descr = descr;
            this.sizeBytes = sizeBytes;
        }

        /** NumPy's type string, e.g. {@code <f4}. */
        public String descr() {
            return descr;
        }

        public int sizeBytes() {
            return sizeBytes;
        }

        static Kind of(String descr) {
            String d = descr.startsWith("=") ? "<" + descr.substring(1) : descr;
            if (d.equals("<u1") || d.equals("u1")) {
                return U8;
            }
            for (Kind k : values()) {
                if (k.descr.equals(d)) {
                    return k;
                }
            }
            return null;
        }
    }

    /**
     * One array: its element type, shape and little-endian C-order bytes.
     *
     * @param kind  element type
     * @param shape dimensions ({@code []} for a 0-d array)
     * @param data  {@code numel · kind.sizeBytes()} bytes (not copied)
     */
    public record Array(Kind kind, long[] shape, byte[] data) {
        public Array {
            shape = shape.clone();
            if ((long) data.length != NpzFile.numel(shape) * kind.sizeBytes()) {
                throw new IllegalArgumentException("array of " + kind + " " + Arrays.toString(shape) + " needs "
                        + NpzFile.numel(shape) * kind.sizeBytes() + " bytes, got " + data.length);
            }
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Number of elements. */
        public long numel() {
            return NpzFile.numel(shape);
        }

        /** A float32 array. */
        public static Array ofFloats(float[] values, long... shape) {
            ByteBuffer b = buffer(values.length * 4L);
            b.asFloatBuffer().put(values);
            return new Array(Kind.F32, shape, b.array());
        }

        /** A float64 array. */
        public static Array ofDoubles(double[] values, long... shape) {
            ByteBuffer b = buffer(values.length * 8L);
            b.asDoubleBuffer().put(values);
            return new Array(Kind.F64, shape, b.array());
        }

        /** An int64 array. */
        public static Array ofLongs(long[] values, long... shape) {
            ByteBuffer b = buffer(values.length * 8L);
            b.asLongBuffer().put(values);
            return new Array(Kind.I64, shape, b.array());
        }

        /** The values as float32 (floating and integer kinds are converted). */
        public float[] floats() {
            double[] d = doubles();
            float[] out = new float[d.length];
            if (kind == Kind.F32) {
                ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
                return out;
            }
            for (int i = 0; i < d.length; i++) {
                out[i] = (float) d[i];
            }
            return out;
        }

        /** The values as doubles. */
        public double[] doubles() {
            int n = Math.toIntExact(numel());
            double[] out = new double[n];
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                out[i] = switch (kind) {
                    case F16 -> Half.f16ToF32(b.getShort(2 * i));
                    case F32 -> b.getFloat(4 * i);
                    case F64 -> b.getDouble(8 * i);
                    case I32 -> b.getInt(4 * i);
                    case I64 -> b.getLong(8 * i);
                    case U8, BOOL -> b.get(i) & 0xFF;
                };
            }
            return out;
        }

        private static ByteBuffer buffer(long bytes) {
            return ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /**
     * Reads every array of an {@code .npz} file, by key (the entry name without {@code .npy}), in archive order.
     *
     * @throws InputException naming the file (and the key) when it is not a zip, an entry is not an NPY v1–v3
     *                        array, or its element type or layout is unsupported
     */
    public static Map<String, Array> read(Path file) {
        Map<String, Array> out = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements(); ) {
                ZipEntry entry = e.nextElement();
                String name = entry.getName();
                if (entry.isDirectory() || !name.endsWith(".npy")) {
                    continue;
                }
                String key = name.substring(0, name.length() - 4);
                try (InputStream in = zip.getInputStream(entry)) {
                    out.put(key, readNpy(in, file + ": \"" + key + "\""));
                }
            }
        } catch (ZipException e) {
            throw new InputException(file + ": not an .npz archive (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new InputException(file + ": cannot read: " + e.getMessage(), e);
        }
        return Collections.unmodifiableMap(out);
    }

    private static Array readNpy(InputStream in, String where) throws IOException {
        byte[] magic = in.readNBytes(8);
        if (magic.length < 8 || !Arrays.equals(Arrays.copyOf(magic, 6), MAGIC)) {
            throw new InputException(where + ": not an NPY array (bad magic)");
        }
        int major = magic[6];
        int headerLength;
        if (major == 1) {
            byte[] h = in.readNBytes(2);
            headerLength = (h[0] & 0xFF) | (h[1] & 0xFF) << 8;
        } else if (major == 2 || major == 3) {
            byte[] h = in.readNBytes(4);
            headerLength = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN).getInt();
        } else {
            throw new InputException(where + ": NPY version " + major + "." + magic[7] + " is not supported");
        }
        String header = new String(in.readNBytes(headerLength), major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(header);
        Matcher f = FORTRAN.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !f.find() || !s.find()) {
            throw new InputException(where + ": malformed NPY header " + header.strip());
        }
        Kind kind = Kind.of(d.group(1));
        if (kind == null) {
            throw new InputException(where + ": element type '" + d.group(1) + "' is not supported");
        }
        if (f.group(1).equals("True")) {
            throw new InputException(where + ": Fortran-order arrays are not supported");
        }
        List<Long> dims = new ArrayList<>();
        for (String part : s.group(1).split(",")) {
            if (!part.isBlank()) {
                try {
                    dims.add(Long.parseLong(part.strip().replace("L", "")));
                } catch (NumberFormatException e) {
                    throw new InputException(where + ": malformed shape (" + s.group(1) + ")");
                }
            }
        }
        long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
        long bytes = numel(shape) * kind.sizeBytes();
        if (bytes > Integer.MAX_VALUE - 16) {
            throw new InputException(where + ": array of " + bytes + " bytes is too large");
        }
        byte[] data = in.readNBytes((int) bytes);
        if (data.length != bytes) {
            throw new InputException(where + ": truncated array (" + data.length + " of " + bytes + " bytes)");
        }
        return new Array(kind, shape, data);
    }

    /**
     * Writes {@code arrays} (key → array, in order) as an uncompressed {@code .npz}, as {@code numpy.savez}
     * does, atomically (temporary file, then rename).
     */
    public static void write(Path target, Map<String, Array> arrays) throws IOException {
        AtomicFile.write(target, raw -> {
            ZipOutputStream zip = new ZipOutputStream(raw);
            zip.setMethod(ZipOutputStream.STORED);
            for (Map.Entry<String, Array> e : arrays.entrySet()) {
                byte[] npy = npy(e.getValue());
                ZipEntry entry = new ZipEntry(e.getKey() + ".npy");
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(npy.length);
                entry.setCompressedSize(npy.length);
                CRC32 crc = new CRC32();
                crc.update(npy);
                entry.setCrc(crc.getValue());
                entry.setTime(315532800000L); // 1980-01-01: reproducible bytes
                zip.putNextEntry(entry);
                zip.write(npy);
                zip.closeEntry();
            }
            zip.finish();
            zip.flush();
        });
    }

    /** One NPY v1.0 array (header padded so the data starts at a multiple of 64, as NumPy does). */
    static byte[] npy(Array a) {
        StringBuilder shape = new StringBuilder("(");
        long[] dims = a.shape();
        for (int i = 0; i < dims.length; i++) {
            shape.append(dims[i]).append(i == 0 && dims.length == 1 ? "," : i < dims.length - 1 ? ", " : "");
        }
        shape.append(')');
        String dict = "{'descr': '" + a.kind().descr() + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
        int padded = (unpadded + 63) / 64 * 64;
        String header = dict + " ".repeat(padded - unpadded) + "\n";
        ByteArrayOutputStream out = new ByteArrayOutputStream(padded + a.data().length);
        out.writeBytes(MAGIC);
        out.write(1);
        out.write(0);
        out.write(header.length() & 0xFF);
        out.write(header.length() >>> 8);
        out.writeBytes(header.getBytes(StandardCharsets.ISO_8859_1));
        out.writeBytes(a.data());
        return out.toByteArray();
    }
}
