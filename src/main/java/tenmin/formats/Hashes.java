package tenmin.formats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 over memory-mapped bytes, streamed in chunks (7 GB files never enter the heap), and the
 * file hashes the web UIs and kohya use (see docs/FORMATS.md).
 */
public final class Hashes {
    private static final int CHUNK = 1 << 20;

    private Hashes() {
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 missing from the JDK", e);
        }
    }

    /** Feeds {@code bytes} into {@code digest} in 1 MiB chunks. */
    public static void update(MessageDigest digest, MemorySegment bytes) {
        byte[] buf = new byte[(int) Math.min(CHUNK, Math.max(1, bytes.byteSize()))];
        for (long off = 0; off < bytes.byteSize(); off += buf.length) {
            int n = (int) Math.min(buf.length, bytes.byteSize() - off);
            MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, off, buf, 0, n);
            digest.update(buf, 0, n);
        }
    }

    /** Lower-case hex SHA-256 of {@code bytes}. */
    public static String sha256Hex(MemorySegment bytes) {
        MessageDigest d = sha256();
        update(d, bytes);
        return HexFormat.of().formatHex(d.digest());
    }

    /** SHA-256 of the whole file (A1111/Civitai "AutoV2" is its first 10 hex digits). */
    public static String fileSha256(SafetensorsFile f) {
        return sha256Hex(f.fileSegment());
    }

    /**
     * SHA-256 of the data section only (everything after the header): kohya's {@code sshs_model_hash}
     * and A1111's "addnet" hash of LoRA files, which ignore metadata edits.
     */
    public static String dataSha256(SafetensorsFile f) {
        MemorySegment all = f.fileSegment();
        return sha256Hex(all.asSlice(f.dataStart()));
    }

    /**
     * kohya's {@code sshs_legacy_hash}: the first 8 hex digits of the SHA-256 of bytes
     * {@code [0x100000, 0x110000)} of the file (empty for files under 1 MiB: {@code e3b0c442}).
     */
    public static String legacyHash(MemorySegment file) {
        long from = Math.min(0x100000L, file.byteSize());
        long to = Math.min(0x110000L, file.byteSize());
        return sha256Hex(file.asSlice(from, to - from)).substring(0, 8);
    }
}
