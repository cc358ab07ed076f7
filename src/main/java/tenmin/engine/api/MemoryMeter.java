package tenmin.engine.api;

/**
 * Byte accounting of a backend's tensor storage: what {@link Backend#liveBytes()} and
 * {@link Backend#peakLiveBytes()} report. A storage is counted from its allocation until the last tensor on
 * it closes, so a view ({@link Backend#reshape}) that outlives its base keeps the bytes counted, as the
 * device allocator keeps them (the tape stores gradients as views of tensors whose base closes).
 *
 * <p>Backends call {@link #allocate} for every new storage, {@link #share} for every view of one and
 * {@link #release} once per tensor when it closes. Thread-safe (kernels may close scratch tensors from
 * worker threads).
 */
public final class MemoryMeter {
    private long liveBytes;
    private long peakBytes;

    /** One storage's bytes and the number of open tensors on it. */
    public static final class Storage {
        private final long bytes;
        private int refs = 1;

        private Storage(long bytes) {
            this.bytes = bytes;
        }

        public long bytes() {
            return bytes;
        }
    }

    /** A new storage of {@code bytes}, held by one tensor. */
    public synchronized Storage allocate(long bytes) {
        liveBytes += bytes;
        peakBytes = Math.max(peakBytes, liveBytes);
        return new Storage(bytes);
    }

    /** Another tensor on {@code s} (a view); returns {@code s}. */
    public synchronized Storage share(Storage s) {
        if (s.refs <= 0) {
            throw new IllegalStateException("view of a released storage");
        }
        s.refs++;
        return s;
    }

    /** One tensor on {@code s} closed; the bytes stop counting when it was the last. */
    public synchronized void release(Storage s) {
        if (s.refs <= 0) {
            throw new IllegalStateException("storage released twice");
        }
        if (--s.refs == 0) {
            liveBytes -= s.bytes;
        }
    }

    /** Bytes of the storages with an open tensor. */
    public synchronized long liveBytes() {
        return liveBytes;
    }

    /** The most bytes live at once since creation or {@link #resetPeak}. */
    public synchronized long peakBytes() {
        return peakBytes;
    }

    /** Starts a new peak measurement at the current live bytes. */
    public synchronized void resetPeak() {
        peakBytes = liveBytes;
    }
}
