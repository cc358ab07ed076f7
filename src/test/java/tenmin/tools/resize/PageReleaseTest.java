package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The norm reading's page release: every byte read is released, in spans, per thread. */
class PageReleaseTest {
    @TempDir
    Path dir;

    /** Released ranges as {start, end} offsets in the file. */
    private final List<long[]> released = Collections.synchronizedList(new ArrayList<>());

    private BaseNorms.PageRelease pages(MemorySegment file, long span) {
        return new BaseNorms.PageRelease(file, span,
                s -> released.add(new long[] {s.address() - file.address(), s.address() - file.address() + s.byteSize()}));
    }

    private MemorySegment map(Arena arena, int bytes) throws IOException {
        Path p = dir.resolve("data.bin");
        Files.write(p, new byte[bytes]);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes, arena);
        }
    }

    @Test
    void releasesASpanOnceEnoughIsReadAndTheRestOnFlush() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment file = map(arena, 4096);
            BaseNorms.PageRelease pages = pages(file, 1000);
            pages.done(file.asSlice(0, 400));
            pages.done(file.asSlice(400, 400));
            assertTrue(released.isEmpty(), "800 of 1000 bytes: nothing released yet");
            pages.done(file.asSlice(800, 300));
            assertEquals(1, released.size());
            assertEquals(0, released.get(0)[0]);
            assertEquals(1100, released.get(0)[1]);
            pages.done(file.asSlice(2000, 100));
            pages.done(file.asSlice(1100, 100));
            pages.flush();
            assertEquals(2, released.size());
            assertEquals(1100, released.get(1)[0], "the span covers everything read since the last release");
            assertEquals(2100, released.get(1)[1]);
            pages.flush();
            assertEquals(2, released.size(), "nothing left to release");
        }
    }

    @Test
    void eachThreadReleasesWhatItRead() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment file = map(arena, 8192);
            BaseNorms.PageRelease pages = pages(file, 1 << 20);
            pages.done(file.asSlice(0, 1000));
            Thread other = Thread.ofPlatform().start(() -> pages.done(file.asSlice(6000, 1000)));
            other.join();
            pages.flush();
            assertEquals(2, released.size(), "one span per thread, not one from 0 to 7000");
            long total = 0;
            for (long[] r : released) {
                total += r[1] - r[0];
            }
            assertEquals(2000, total);
        }
    }

    @Test
    void normJobsRunInFileOrderAndComputeJobsSmallestFirst() {
        List<WorkPool.Job<?>> jobs = new ArrayList<>();
        WorkPool.Job<Object> m1 = new WorkPool.Job<>(50, true, () -> null);
        WorkPool.Job<Object> m2 = new WorkPool.Job<>(10, true, () -> null);
        WorkPool.Job<Object> c1 = new WorkPool.Job<>(30, () -> null);
        WorkPool.Job<Object> c2 = new WorkPool.Job<>(20, () -> null);
        jobs.add(m1);
        jobs.add(c1);
        jobs.add(m2);
        jobs.add(c2);
        List<WorkPool.Job<?>> order = WorkPool.schedule(jobs);
        assertTrue(order.indexOf(m1) < order.indexOf(m2), "memory-bound jobs keep the order they were given");
        assertTrue(order.indexOf(c2) < order.indexOf(c1), "compute-bound jobs: smallest first");
    }
}
