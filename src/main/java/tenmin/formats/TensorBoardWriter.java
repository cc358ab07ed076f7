package tenmin.formats;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * Writes TensorBoard event files without TensorFlow (java-ecosystem §4.2): TFRecord framing
 * ({@code uint64 length, uint32 masked CRC32C(length), data, uint32 masked CRC32C(data)}, little-endian)
 * around hand-encoded {@code tensorboard.Event} protobufs. Scalars are {@code Summary.Value.simple_value}
 * (what PyTorch's {@code SummaryWriter.add_scalar} writes), images are {@code Summary.Image} with PNG bytes.
 *
 * <p>The file is named {@code events.out.tfevents.<unix seconds>.<host>.<pid>.<n>}, as PyTorch's
 * {@code SummaryWriter} names it (n counts writers: the first free number from 0, so two runs started in the
 * same second never collide), and starts with the
 * {@code file_version "brain.Event:2"} record. Every record is flushed as written, so TensorBoard sees a
 * live run and a crash loses at most the record being written (TensorBoard ignores a truncated tail).
 */
public final class TensorBoardWriter implements AutoCloseable {
    /** The first record's file_version. */
    public static final String FILE_VERSION = "brain.Event:2";
    private static final int MASK_DELTA = 0xa282ead8;

    private final Path file;
    private final OutputStream out;
    private final java.util.function.DoubleSupplier clock;
    private boolean closed;

    private TensorBoardWriter(Path file, OutputStream out, java.util.function.DoubleSupplier clock) {
        this.file = file;
        this.out = out;
        this.clock = clock;
    }

    /**
     * Creates {@code dir} if needed and a new event file in it named after {@code startSeconds} and
     * {@code host}; {@code clock} gives each event's wall time in seconds.
     */
    public static TensorBoardWriter create(Path dir, long startSeconds, String host,
                                           java.util.function.DoubleSupplier clock) throws IOException {
        Files.createDirectories(dir);
        long pid = ProcessHandle.current().pid();
        Path file;
        OutputStream out;
        for (int n = 0; ; n++) {
            file = dir.resolve(fileName(startSeconds, host, pid, n));
            try {
                out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                break;
            } catch (java.nio.file.FileAlreadyExistsException taken) {
                // another writer of this process and second: take the next number
            }
        }
        TensorBoardWriter w = new TensorBoardWriter(file, out, clock);
        w.writeEvent(fileVersionEvent(clock.getAsDouble()));
        return w;
    }

    /**
     * {@code events.out.tfevents.<secs>.<host>.<pid>.<n>} (PyTorch's SummaryWriter; dots in the host name are
     * kept, as TensorFlow does).
     */
    public static String fileName(long startSeconds, String host, long pid, int n) {
        String h = host == null || host.isBlank() ? "localhost" : host.replace('/', '_');
        return "events.out.tfevents." + startSeconds + "." + h + "." + pid + "." + n;
    }

    public Path file() {
        return file;
    }

    /** Appends a scalar summary {@code tag = value} at {@code step}. */
    public void scalar(String tag, long step, float value) throws IOException {
        ByteArrayOutputStream v = new ByteArrayOutputStream();
        stringField(v, 1, tag);
        tag(v, 2, 5); // simple_value: fixed32
        fixed32(v, Float.floatToRawIntBits(value));
        writeEvent(summaryEvent(clock.getAsDouble(), step, v.toByteArray()));
    }

    /**
     * Appends an image summary with PNG bytes (colorspace 3 = RGB, 4 = RGBA) of the given size.
     */
    public void image(String tag, long step, int width, int height, int colorspace, byte[] png) throws IOException {
        ByteArrayOutputStream img = new ByteArrayOutputStream();
        tag(img, 1, 0);
        varint(img, height);
        tag(img, 2, 0);
        varint(img, width);
        tag(img, 3, 0);
        varint(img, colorspace);
        bytesField(img, 4, png);
        ByteArrayOutputStream v = new ByteArrayOutputStream();
        stringField(v, 1, tag);
        bytesField(v, 4, img.toByteArray());
        writeEvent(summaryEvent(clock.getAsDouble(), step, v.toByteArray()));
    }

    /** Flushes to disk. */
    public void flush() throws IOException {
        out.flush();
    }

    @Override
    public void close() throws IOException {
        if (!closed) {
            closed = true;
            out.close();
        }
    }

    // ---------------------------------------------------------------- protobuf encoding

    private static byte[] fileVersionEvent(double wallTime) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        tag(e, 1, 1);
        fixed64(e, Double.doubleToRawLongBits(wallTime));
        stringField(e, 3, FILE_VERSION);
        return e.toByteArray();
    }

    private static byte[] summaryEvent(double wallTime, long step, byte[] value) {
        ByteArrayOutputStream summary = new ByteArrayOutputStream();
        bytesField(summary, 1, value); // Summary.value (repeated, one here)
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        tag(e, 1, 1);
        fixed64(e, Double.doubleToRawLongBits(wallTime));
        tag(e, 2, 0);
        varint(e, step);
        bytesField(e, 5, summary.toByteArray());
        return e.toByteArray();
    }

    private static void tag(ByteArrayOutputStream o, int field, int wireType) {
        varint(o, ((long) field << 3) | wireType);
    }

    private static void varint(ByteArrayOutputStream o, long v) {
        while ((v & ~0x7FL) != 0) {
            o.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        o.write((int) v);
    }

    private static void fixed32(ByteArrayOutputStream o, int v) {
        for (int i = 0; i < 4; i++) {
            o.write((v >>> (8 * i)) & 0xFF);
        }
    }

    private static void fixed64(ByteArrayOutputStream o, long v) {
        for (int i = 0; i < 8; i++) {
            o.write((int) ((v >>> (8 * i)) & 0xFF));
        }
    }

    private static void bytesField(ByteArrayOutputStream o, int field, byte[] b) {
        tag(o, field, 2);
        varint(o, b.length);
        o.writeBytes(b);
    }

    private static void stringField(ByteArrayOutputStream o, int field, String s) {
        bytesField(o, field, s.getBytes(StandardCharsets.UTF_8));
    }

    // ---------------------------------------------------------------- TFRecord framing

    private void writeEvent(byte[] data) throws IOException {
        if (closed) {
            throw new IllegalStateException(file + " is closed");
        }
        ByteBuffer head = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(data.length);
        head.putInt(maskedCrc32c(head.array(), 0, 8));
        out.write(head.array());
        out.write(data);
        ByteBuffer tail = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maskedCrc32c(data, 0, data.length));
        out.write(tail.array());
        out.flush();
    }

    /** TFRecord's masked CRC: {@code ((c >>> 15) | (c << 17)) + 0xa282ead8} of the CRC32C {@code c}. */
    public static int maskedCrc32c(byte[] b, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(b, off, len);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + MASK_DELTA;
    }
}
