package tenmin.formats;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

import tenmin.core.InputException;

/**
 * PNG files with text chunks, the way image tools carry generation settings (A1111's {@code parameters}).
 *
 * <p>Writing: 8-bit RGB, no interlace, rows filtered with the per-row heuristic of libpng (the filter with the
 * smallest sum of absolute byte values), zlib level 6 as Pillow. Text chunks come right after {@code IHDR},
 * before the image data, in the given order; each is {@code tEXt} when keyword and text are Latin-1 and an
 * uncompressed {@code iTXt} (UTF-8, no language tag) otherwise, exactly as Pillow's {@code PngInfo.add_text}
 * decides. The file is written atomically.
 *
 * <p>Reading ({@link #readText}): every {@code tEXt}, {@code zTXt} and {@code iTXt} chunk before {@code IEND},
 * CRCs checked; a later chunk with the same keyword wins (as in Pillow's {@code info}).
 */
public final class PngFile {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    private static final int IDAT_BYTES = 1 << 16;
    /** Filtered bytes per compressed band (fixed: the file's bytes do not depend on the machine). */
    private static final int BAND_BYTES = 1 << 19;
    /** Deflate's window: what each band is primed with. */
    private static final int WINDOW_BYTES = 1 << 15;
    /** A text chunk longer than this is not something we or the web UIs write (guards against garbage). */
    private static final int MAX_CHUNK_BYTES = 1 << 28;

    private PngFile() {
    }

    /** Writes {@code image} with {@code text} chunks to {@code target} atomically. */
    public static void write(Path target, RgbImage image, Map<String, String> text) throws IOException {
        byte[] bytes = encode(image, text); // validate and encode before touching the file system
        AtomicFile.write(target, bytes);
    }

    /** The PNG bytes of {@code image} with {@code text} chunks. */
    public static byte[] encode(RgbImage image, Map<String, String> text) {
        for (String keyword : text.keySet()) {
            checkKeyword(keyword);
        }
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(image.width() * image.height() + 4096);
            out.write(SIGNATURE);
            ByteBuffer ihdr = ByteBuffer.allocate(13);
            ihdr.putInt(image.width()).putInt(image.height());
            ihdr.put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0); // depth, RGB, deflate, filter 0, no interlace
            chunk(out, "IHDR", ihdr.array());
            for (Map.Entry<String, String> e : text.entrySet()) {
                textChunk(out, e.getKey(), e.getValue());
            }
            writeImageData(out, image);
            chunk(out, "IEND", new byte[0]);
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // in-memory streams do not fail
        }
    }

    /** PNG keywords: 1-79 printable Latin-1 characters, no leading, trailing or double spaces. */
    private static void checkKeyword(String keyword) {
        boolean ok = !keyword.isEmpty() && keyword.length() <= 79 && !keyword.startsWith(" ") && !keyword.endsWith(" ")
                && !keyword.contains("  ");
        for (int i = 0; ok && i < keyword.length(); i++) {
            char c = keyword.charAt(i);
            ok = (c >= 32 && c <= 126) || (c >= 161 && c <= 255);
        }
        if (!ok) {
            throw new IllegalArgumentException("invalid PNG text keyword '" + keyword + "'");
        }
    }

    private static void textChunk(OutputStream out, String keyword, String value) throws IOException {
        CharsetEncoder latin1 = StandardCharsets.ISO_8859_1.newEncoder();
        ByteArrayOutputStream data = new ByteArrayOutputStream(value.length() + keyword.length() + 8);
        data.write(keyword.getBytes(StandardCharsets.ISO_8859_1));
        data.write(0);
        if (latin1.canEncode(value)) {
            data.write(value.getBytes(StandardCharsets.ISO_8859_1));
            chunk(out, "tEXt", data.toByteArray());
        } else {
            data.write(new byte[] {0, 0}); // not compressed, method 0
            data.write(0); // empty language tag
            data.write(0); // empty translated keyword
            data.write(value.getBytes(StandardCharsets.UTF_8));
            chunk(out, "iTXt", data.toByteArray());
        }
    }

    /**
     * The image data as one zlib stream in IDAT chunks, compressed in bands of rows on all cores (pigz's scheme): each
     * band is raw deflate (level 6) primed with the 32 KiB of filtered bytes before it and ended by a sync flush (the
     * last by the final block), so the bands join into one stream any inflater reads; the zlib header and the Adler-32
     * of all the data frame it. Bands have a fixed size, so the bytes do not depend on the number of cores. A 1024x1024
     * sample took 0.2 s in one thread (2026-11-26), which a training run paid at every sample on its loop's thread.
     */
    private static void writeImageData(OutputStream out, RgbImage image) throws IOException {
        int stride = image.width() * 3;
        int rowBytes = stride + 1;
        int height = image.height();
        byte[] filtered = new byte[Math.multiplyExact(rowBytes, height)];
        int rowsPerBand = Math.max(1, BAND_BYTES / rowBytes);
        int bands = (height + rowsPerBand - 1) / rowsPerBand;
        // filtering reads the row above as it is (unfiltered), so each band filters on its own
        IntStream.range(0, bands).parallel().forEach(b -> {
            int y0 = b * rowsPerBand;
            int y1 = Math.min(height, y0 + rowsPerBand);
            byte[] prev = new byte[stride];
            byte[] cur = new byte[stride];
            byte[][] candidates = new byte[5][rowBytes];
            if (y0 > 0) {
                image.copyRow(y0 - 1, prev, 0);
            }
            for (int y = y0; y < y1; y++) {
                image.copyRow(y, cur, 0);
                System.arraycopy(bestFilteredRow(cur, prev, candidates), 0, filtered, y * rowBytes, rowBytes);
                byte[] t = prev;
                prev = cur;
                cur = t;
            }
        });
        byte[][] compressed = new byte[bands][];
        IntStream.range(0, bands).parallel().forEach(b -> {
            int from = b * rowsPerBand * rowBytes;
            int to = Math.min(filtered.length, from + rowsPerBand * rowBytes);
            compressed[b] = deflateBand(filtered, from, to, b == bands - 1);
        });
        OutputStream idat = new ChunkedIdat(out);
        idat.write(0x78);                                   // zlib: deflate, 32 KiB window
        idat.write(0x9C);                                   // default level, no dictionary; (0x789C % 31 == 0)
        for (byte[] c : compressed) {
            idat.write(c);
        }
        Adler32 adler = new Adler32();
        adler.update(filtered);
        long a = adler.getValue();
        idat.write(new byte[] {(byte) (a >>> 24), (byte) (a >>> 16), (byte) (a >>> 8), (byte) a});
        idat.flush();
    }

    /** Raw deflate of {@code data[from, to)}, primed with the window before it; a sync flush, or the final block. */
    private static byte[] deflateBand(byte[] data, int from, int to, boolean last) {
        Deflater d = new Deflater(6, true);
        try {
            int dict = Math.min(from, WINDOW_BYTES);
            if (dict > 0) {
                d.setDictionary(data, from - dict, dict);
            }
            d.setInput(data, from, to - from);
            ByteArrayOutputStream out = new ByteArrayOutputStream((to - from) / 2 + 64);
            byte[] buf = new byte[1 << 16];
            if (last) {
                d.finish();
                while (!d.finished()) {
                    int n = d.deflate(buf);
                    out.write(buf, 0, n);
                }
            } else {
                int n;
                do {
                    n = d.deflate(buf, 0, buf.length, Deflater.SYNC_FLUSH);
                    out.write(buf, 0, n);
                } while (n == buf.length || !d.needsInput());
            }
            return out.toByteArray();
        } finally {
            d.end();
        }
    }

    /**
     * Filters one row all five ways (none, sub, up, average, Paeth, PNG spec §9) and returns the one with
     * the smallest sum of |signed byte| (libpng's heuristic); the first byte is the filter type.
     */
    private static byte[] bestFilteredRow(byte[] cur, byte[] prev, byte[][] out) {
        int bpp = 3;
        int n = cur.length;
        long best = Long.MAX_VALUE;
        int bestType = 0;
        for (int type = 0; type < 5; type++) {
            byte[] f = out[type];
            f[0] = (byte) type;
            long sum = 0;
            for (int i = 0; i < n; i++) {
                int x = cur[i] & 0xFF;
                int a = i >= bpp ? cur[i - bpp] & 0xFF : 0;
                int b = prev[i] & 0xFF;
                int c = i >= bpp ? prev[i - bpp] & 0xFF : 0;
                int predicted = switch (type) {
                    case 0 -> 0;
                    case 1 -> a;
                    case 2 -> b;
                    case 3 -> (a + b) >>> 1;
                    default -> paeth(a, b, c);
                };
                byte v = (byte) (x - predicted);
                f[i + 1] = v;
                sum += Math.abs((int) v);
            }
            if (sum < best) {
                best = sum;
                bestType = type;
            }
        }
        return out[bestType];
    }

    private static int paeth(int a, int b, int c) {
        int p = a + b - c;
        int pa = Math.abs(p - a);
        int pb = Math.abs(p - b);
        int pc = Math.abs(p - c);
        if (pa <= pb && pa <= pc) {
            return a;
        }
        return pb <= pc ? b : c;
    }

    private static void chunk(OutputStream out, String type, byte[] data) throws IOException {
        chunk(out, type, data, data.length);
    }

    private static void chunk(OutputStream out, String type, byte[] data, int length) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
        d.writeInt(length);
        d.write(typeBytes);
        d.write(data, 0, length);
        CRC32 crc = new CRC32();
        crc.update(typeBytes);
        crc.update(data, 0, length);
        d.writeInt((int) crc.getValue());
        d.flush();
    }

    /** Collects compressed bytes into IDAT chunks of at most 64 KiB. */
    private static final class ChunkedIdat extends OutputStream {
        private final OutputStream out;
        private final byte[] buf = new byte[IDAT_BYTES];
        private int size;

        ChunkedIdat(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            if (size == buf.length) {
                flushChunk();
            }
            buf[size++] = (byte) b;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            while (len > 0) {
                if (size == buf.length) {
                    flushChunk();
                }
                int n = Math.min(len, buf.length - size);
                System.arraycopy(b, off, buf, size, n);
                size += n;
                off += n;
                len -= n;
            }
        }

        @Override
        public void flush() throws IOException {
            if (size > 0) {
                flushChunk();
            }
        }

        private void flushChunk() throws IOException {
            chunk(out, "IDAT", buf, size);
            size = 0;
        }
    }

    // ---- reading -------------------------------------------------------------------------------------

    /** The text chunks of a PNG file, keyword → text, in file order. */
    public static Map<String, String> readText(Path file) {
        byte[] bytes;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                throw new InputException(file + ": too large for a PNG we read (" + size + " bytes)");
            }
            ByteBuffer buf = ByteBuffer.allocate((int) size);
            while (buf.hasRemaining() && ch.read(buf) >= 0) {
                // keep reading
            }
            bytes = buf.array();
        } catch (NoSuchFileException e) {
            throw new InputException(file + ": file not found");
        } catch (IOException e) {
            throw new InputException(file + ": cannot read: " + e.getMessage(), e);
        }
        return readText(bytes, file.toString());
    }

    /** The text chunks of PNG bytes; {@code name} labels errors. */
    public static Map<String, String> readText(byte[] png, String name) {
        ByteBuffer b = ByteBuffer.wrap(png);
        for (byte s : SIGNATURE) {
            if (!b.hasRemaining() || b.get() != s) {
                throw new InputException(name + ": not a PNG file (bad signature)");
            }
        }
        Map<String, String> text = new LinkedHashMap<>();
        boolean sawEnd = false;
        while (b.remaining() >= 12) {
            int length = b.getInt();
            if (length < 0 || length > MAX_CHUNK_BYTES || length > b.remaining() - 8) {
                throw new InputException(name + ": truncated or corrupt PNG (chunk of " + (length & 0xFFFFFFFFL)
                        + " bytes at offset " + (b.position() - 4) + ")");
            }
            byte[] typeBytes = new byte[4];
            b.get(typeBytes);
            byte[] data = new byte[length];
            b.get(data);
            int storedCrc = b.getInt();
            CRC32 crc = new CRC32();
            crc.update(typeBytes);
            crc.update(data);
            String type = new String(typeBytes, StandardCharsets.ISO_8859_1);
            if ((int) crc.getValue() != storedCrc) {
                throw new InputException(name + ": corrupt PNG (CRC mismatch in " + type + " chunk)");
            }
            switch (type) {
                case "tEXt" -> putText(text, data, name, false);
                case "zTXt" -> putText(text, data, name, true);
                case "iTXt" -> putInternational(text, data, name);
                case "IEND" -> sawEnd = true;
                default -> {
                }
            }
            if (sawEnd) {
                break;
            }
        }
        if (!sawEnd) {
            throw new InputException(name + ": truncated PNG (no IEND chunk)");
        }
        return text;
    }

    private static int nul(byte[] data, int from, String name) {
        for (int i = from; i < data.length; i++) {
            if (data[i] == 0) {
                return i;
            }
        }
        throw new InputException(name + ": corrupt PNG text chunk (missing separator)");
    }

    private static void putText(Map<String, String> text, byte[] data, String name, boolean compressed) {
        int k = nul(data, 0, name);
        String keyword = new String(data, 0, k, StandardCharsets.ISO_8859_1);
        byte[] value;
        if (compressed) {
            if (k + 1 >= data.length || data[k + 1] != 0) {
                throw new InputException(name + ": zTXt chunk '" + keyword + "' uses an unknown compression method");
            }
            value = inflate(data, k + 2, name, keyword);
        } else {
            value = java.util.Arrays.copyOfRange(data, k + 1, data.length);
        }
        text.remove(keyword);
        text.put(keyword, new String(value, StandardCharsets.ISO_8859_1));
    }

    private static void putInternational(Map<String, String> text, byte[] data, String name) {
        int k = nul(data, 0, name);
        String keyword = new String(data, 0, k, StandardCharsets.ISO_8859_1);
        if (k + 2 >= data.length) {
            throw new InputException(name + ": corrupt iTXt chunk '" + keyword + "'");
        }
        boolean compressed = data[k + 1] != 0;
        int lang = nul(data, k + 3, name);
        int translated = nul(data, lang + 1, name);
        byte[] value = compressed ? inflate(data, translated + 1, name, keyword)
                : java.util.Arrays.copyOfRange(data, translated + 1, data.length);
        text.remove(keyword);
        text.put(keyword, new String(value, StandardCharsets.UTF_8));
    }

    private static byte[] inflate(byte[] data, int offset, String name, String keyword) {
        Inflater inflater = new Inflater();
        try {
            inflater.setInput(data, offset, data.length - offset);
            ByteArrayOutputStream out = new ByteArrayOutputStream(data.length * 4);
            byte[] buf = new byte[8192];
            while (!inflater.finished()) {
                int n = inflater.inflate(buf);
                if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    throw new InputException(name + ": truncated compressed text in chunk '" + keyword + "'");
                }
                out.write(buf, 0, n);
                if (out.size() > MAX_CHUNK_BYTES) {
                    throw new InputException(name + ": compressed text in chunk '" + keyword + "' is too large");
                }
            }
            return out.toByteArray();
        } catch (DataFormatException e) {
            throw new InputException(name + ": corrupt compressed text in chunk '" + keyword + "'", e);
        } finally {
            inflater.end();
        }
    }
}
