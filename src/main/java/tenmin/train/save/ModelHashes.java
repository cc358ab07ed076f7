package tenmin.train.save;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

import tenmin.core.InputException;
import tenmin.formats.Hashes;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;

/**
 * The hashes kohya records (trainer-spec §9.2–9.3), computed by streaming: the base model is read
 * through a small buffer, never mapped or loaded whole, so a 7 GB checkpoint costs a few MB of memory.
 */
public final class ModelHashes {
    private static final int BUFFER = 8 << 20;

    private ModelHashes() {
    }

    /** {@code ss_new_sd_model_hash}: SHA-256 of the whole file, lower-case hex. */
    public static String fileSha256(Path file) {
        MessageDigest d = Hashes.sha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[BUFFER];
            int n;
            while ((n = in.read(buf)) > 0) {
                d.update(buf, 0, n);
            }
        } catch (IOException e) {
            throw new InputException(file + ": cannot read for hashing: " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(d.digest());
    }

    /**
     * {@code ss_sd_model_hash} (the old "model hash"): first 8 hex digits of the SHA-256 of the 64 KiB at
     * offset 1 MiB (fewer bytes, or none, for smaller files).
     */
    public static String legacyModelHash(Path file) {
        MessageDigest d = Hashes.sha256();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long from = Math.min(0x100000L, ch.size());
            long to = Math.min(0x110000L, ch.size());
            ByteBuffer b = ByteBuffer.allocate((int) (to - from));
            while (b.hasRemaining() && ch.read(b, from + b.position()) > 0) {
                // read fully
            }
            b.flip();
            d.update(b);
        } catch (IOException e) {
            throw new InputException(file + ": cannot read for hashing: " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(d.digest()).substring(0, 8);
    }

    /**
     * {@code sshs_model_hash} as LyCORIS writes it: {@code "0x"} + SHA-256 over the stored bytes of every
     * tensor (already converted to {@code dtype}) in state-dict order — the data section of a one-tensor
     * safetensors file per tensor, concatenated.
     */
    public static String sshsModelHash(List<StateTensor> stateDict, StDType dtype) {
        MessageDigest d = Hashes.sha256();
        try (OutputStream out = new DigestOutputStream(OutputStream.nullOutputStream(), d)) {
            for (StateTensor t : stateDict) {
                SafetensorsWriter.writeFloats(out, t.values(), dtype);
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return "0x" + HexFormat.of().formatHex(d.digest());
    }
}
