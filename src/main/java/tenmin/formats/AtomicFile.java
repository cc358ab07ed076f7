package tenmin.formats;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

import tenmin.core.InputException;

/**
 * Writes a file atomically: the content goes to a temporary file beside the target, is flushed to disk,
 * then renamed over the target. An interrupted or failed write never leaves a half file under the final
 * name and never destroys an existing one; the temporary file is removed on failure and on JVM exit.
 */
public final class AtomicFile {
    private AtomicFile() {
    }

    /** Produces a file's content. */
    @FunctionalInterface
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    /** Writes {@code content} to {@code target} atomically; an unwritable folder is an {@link InputException}. */
    public static void write(Path target, Content content) throws IOException {
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new InputException(target + ": output folder " + dir + " does not exist");
        }
        if (Files.isDirectory(abs)) {
            throw new InputException(target + ": is a folder, expected a file name");
        }
        Path tmp = dir.resolve("." + abs.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                tmp.toFile().deleteOnExit();
                OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 20);
                content.writeTo(out);
                out.flush();
                ch.force(true);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } catch (java.nio.file.AccessDeniedException | NoSuchFileException e) {
            throw new InputException(target + ": cannot write: " + e.getMessage(), e);
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Writes bytes atomically. */
    public static void write(Path target, byte[] bytes) throws IOException {
        write(target, out -> out.write(bytes));
    }
}
