package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import tenmin.engine.api.DeviceClock;

/**
 * {@link DeviceClock} on CUDA: each mark records a CUDA event on the default stream (recording costs the host
 * a microsecond or two and never waits); the intervals are {@code cudaEventElapsedTime} between consecutive
 * events once the last has completed. Events are created as marks need them and reused after {@link #reset()}.
 */
final class CudaEventClock implements DeviceClock {
    private final Shim shim;
    private final List<MemorySegment> events = new ArrayList<>();
    private int marks;

    CudaEventClock(Shim shim) {
        this.shim = shim;
    }

    /** Whether this libtorch's CUDA runtime has the event functions. */
    static boolean available(Shim shim) {
        return shim.cudaEventCreate != null && shim.cudaEventRecord != null && shim.cudaEventSynchronize != null
                && shim.cudaEventElapsedTime != null && shim.cudaEventDestroy != null;
    }

    @Override
    public void mark() {
        try {
            if (marks == events.size()) {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment ret = a.allocate(ADDRESS);
                    check((int) shim.cudaEventCreate.invokeExact(ret), "cudaEventCreate");
                    events.add(ret.get(ADDRESS, 0));
                }
            }
            check((int) shim.cudaEventRecord.invokeExact(events.get(marks), MemorySegment.NULL), "cudaEventRecord");
            marks++;
        } catch (Throwable t) {
            throw Shim.rethrow("cudaEventRecord", t);
        }
    }

    @Override
    public int marks() {
        return marks;
    }

    @Override
    public double[] intervalsMillis() {
        double[] out = new double[Math.max(0, marks - 1)];
        if (out.length == 0) {
            return out;
        }
        try (Arena a = Arena.ofConfined()) {
            check((int) shim.cudaEventSynchronize.invokeExact(events.get(marks - 1)), "cudaEventSynchronize");
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            for (int i = 0; i < out.length; i++) {
                check((int) shim.cudaEventElapsedTime.invokeExact(ms, events.get(i), events.get(i + 1)),
                        "cudaEventElapsedTime");
                out[i] = ms.get(JAVA_FLOAT, 0);
            }
        } catch (Throwable t) {
            throw Shim.rethrow("cudaEventElapsedTime", t);
        }
        return out;
    }

    @Override
    public void reset() {
        marks = 0;
    }

    @Override
    public void close() {
        try {
            for (MemorySegment e : events) {
                int rc = (int) shim.cudaEventDestroy.invokeExact(e);
                check(rc, "cudaEventDestroy");
            }
        } catch (Throwable t) {
            throw Shim.rethrow("cudaEventDestroy", t);
        } finally {
            events.clear();
            marks = 0;
        }
    }

    private static void check(int rc, String what) {
        if (rc != 0) {
            throw new TorchException(what + " returned CUDA error " + rc);
        }
    }
}
