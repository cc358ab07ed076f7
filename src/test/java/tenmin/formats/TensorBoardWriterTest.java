package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reads our event files back with a decoder written here from the TFRecord and protobuf specs. */
class TensorBoardWriterTest {

    /** Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). */
    static int crc32c(byte[] b, int off, int len) {
        int crc = 0xFFFFFFFF;
        for (int i = off; i < off + len; i++) {
            crc ^= b[i] & 0xFF;
            for (int k = 0; k < 8; k++) {
                crc = (crc & 1) != 0 ? (crc >>> 1) ^ 0x82F63B78 : crc >>> 1;
            }
        }
        return ~crc;
    }

    static int mask(int crc) {
        return Integer.rotateRight(crc, 15) + 0xa282ead8;
    }

    /** One decoded protobuf field: number, wire type, value (Long for varint/fixed, byte[] for length-delimited). */
    record Field(int number, int wire, Object value) {
    }

    static List<Field> decode(byte[] b) {
        List<Field> out = new ArrayList<>();
        int[] pos = {0};
        while (pos[0] < b.length) {
            long key = readVarint(b, pos);
            int number = (int) (key >>> 3);
            int wire = (int) (key & 7);
            switch (wire) {
                case 0 -> out.add(new Field(number, wire, readVarint(b, pos)));
                case 1 -> {
                    out.add(new Field(number, wire, ByteBuffer.wrap(b, pos[0], 8).order(ByteOrder.LITTLE_ENDIAN).getLong()));
                    pos[0] += 8;
                }
                case 5 -> {
                    out.add(new Field(number, wire, (long) ByteBuffer.wrap(b, pos[0], 4).order(ByteOrder.LITTLE_ENDIAN).getInt()));
                    pos[0] += 4;
                }
                case 2 -> {
                    int len = (int) readVarint(b, pos);
                    byte[] v = new byte[len];
                    System.arraycopy(b, pos[0], v, 0, len);
                    pos[0] += len;
                    out.add(new Field(number, wire, v));
                }
                default -> throw new AssertionError("unexpected wire type " + wire);
            }
        }
        return out;
    }

    static long readVarint(byte[] b, int[] pos) {
        long v = 0;
        for (int shift = 0; ; shift += 7) {
            int x = b[pos[0]++] & 0xFF;
            v |= (long) (x & 0x7F) << shift;
            if ((x & 0x80) == 0) {
                return v;
            }
        }
    }

    static Field first(List<Field> fs, int number) {
        return fs.stream().filter(f -> f.number() == number).findFirst().orElseThrow(
                () -> new AssertionError("field " + number + " missing"));
    }

    /** Splits a TFRecord file into records, checking both masked CRCs of each. */
    static List<byte[]> records(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        List<byte[]> out = new ArrayList<>();
        int p = 0;
        while (p < all.length) {
            ByteBuffer bb = ByteBuffer.wrap(all, p, 12).order(ByteOrder.LITTLE_ENDIAN);
            long len = bb.getLong();
            int lenCrc = bb.getInt();
            assertEquals(mask(crc32c(all, p, 8)), lenCrc, "length CRC of record at " + p);
            byte[] data = new byte[(int) len];
            System.arraycopy(all, p + 12, data, 0, (int) len);
            int dataCrc = ByteBuffer.wrap(all, p + 12 + (int) len, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            assertEquals(mask(crc32c(data, 0, data.length)), dataCrc, "data CRC of record at " + p);
            out.add(data);
            p += 16 + (int) len;
        }
        return out;
    }

    @Test
    void crc32cCheckValue() {
        assertEquals(0xE3069283, crc32c("123456789".getBytes(StandardCharsets.US_ASCII), 0, 9));
        byte[] x = "hello".getBytes(StandardCharsets.US_ASCII);
        assertEquals(mask(crc32c(x, 0, x.length)), TensorBoardWriter.maskedCrc32c(x, 0, x.length));
    }

    @Test
    void writesScalarsAndImagesThatDecode(@TempDir Path dir) throws IOException {
        double[] now = {1700000000.25};
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3};
        Path file;
        try (TensorBoardWriter w = TensorBoardWriter.create(dir.resolve("run/network_train"), 1700000000L, "box",
                () -> now[0]++)) {
            w.scalar("loss/current", 0, 0.125f);
            w.scalar("lr/unet", 300, 2.9e-4f);
            w.image("samples/0", 10, 64, 32, 3, png);
            file = w.file();
        }
        long pid = ProcessHandle.current().pid();
        assertEquals("events.out.tfevents.1700000000.box." + pid + ".0", file.getFileName().toString());
        // a second writer in the same folder and second takes the next number
        try (TensorBoardWriter w2 = TensorBoardWriter.create(dir.resolve("run/network_train"), 1700000000L, "box",
                () -> now[0]++)) {
            assertEquals("events.out.tfevents.1700000000.box." + pid + ".1", w2.file().getFileName().toString());
        }
        List<byte[]> recs = records(file);
        assertEquals(4, recs.size());

        List<Field> version = decode(recs.get(0));
        assertEquals(1700000000.25, Double.longBitsToDouble((Long) first(version, 1).value()));
        assertEquals("brain.Event:2", new String((byte[]) first(version, 3).value(), StandardCharsets.UTF_8));

        Map<String, Float> scalars = new LinkedHashMap<>();
        Map<String, Long> steps = new LinkedHashMap<>();
        for (int i = 1; i <= 2; i++) {
            List<Field> ev = decode(recs.get(i));
            List<Field> value = decode((byte[]) first(decode((byte[]) first(ev, 5).value()), 1).value());
            String tag = new String((byte[]) first(value, 1).value(), StandardCharsets.UTF_8);
            Field simple = first(value, 2);
            assertEquals(5, simple.wire());
            scalars.put(tag, Float.intBitsToFloat((int) (long) (Long) simple.value()));
            steps.put(tag, (Long) first(ev, 2).value());
        }
        assertEquals(Map.of("loss/current", 0.125f, "lr/unet", 2.9e-4f), scalars);
        assertEquals(Map.of("loss/current", 0L, "lr/unet", 300L), steps);

        List<Field> ev = decode(recs.get(3));
        assertEquals(10L, first(ev, 2).value());
        List<Field> value = decode((byte[]) first(decode((byte[]) first(ev, 5).value()), 1).value());
        assertEquals("samples/0", new String((byte[]) first(value, 1).value(), StandardCharsets.UTF_8));
        List<Field> image = decode((byte[]) first(value, 4).value());
        assertEquals(32L, first(image, 1).value());
        assertEquals(64L, first(image, 2).value());
        assertEquals(3L, first(image, 3).value());
        assertArrayEquals(png, (byte[]) first(image, 4).value());
        assertTrue(Files.size(file) > 0);
    }
}
