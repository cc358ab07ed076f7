package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import org.junit.jupiter.api.Test;

class LoadTest {
    @Test
    void loadsAndReportsVersion() {
        LibTorch lt = TorchTesting.libTorchOrSkip();
        System.out.println(lt.describe());
        System.out.println(lt.rejected());
        assertEquals(2, lt.abiVersion() >>> 56, lt.describe());
        assertTrue(lt.describe().contains("devices: cpu"));
    }

    /** libgomp, loaded with libtorch, sees OMP_WAIT_POLICY=passive unless the user chose an OpenMP setting. */
    @Test
    void openMpThreadsWaitPassivelyUnlessTheUserChose() throws Throwable {
        TorchTesting.libTorchOrSkip();
        String userChoice = System.getenv("OMP_WAIT_POLICY");
        boolean userSetSomething = userChoice != null || System.getenv("GOMP_SPINCOUNT") != null
                || System.getenv("OMP_NUM_THREADS") != null;
        Linker linker = Linker.nativeLinker();
        MethodHandle getenv = linker.downcallHandle(linker.defaultLookup().find("getenv").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = (MemorySegment) getenv.invokeExact(a.allocateFrom("OMP_WAIT_POLICY"));
            String nativeValue = v.equals(MemorySegment.NULL) ? null : v.reinterpret(64).getString(0);
            assertEquals(userSetSomething ? userChoice : "passive", nativeValue);
        }
    }

    /**
     * libtorch's CUDA allocator gets expandable segments (PYTORCH_CUDA_ALLOC_CONF in the C environment, read when
     * it starts) unless the user set PYTORCH_CUDA_ALLOC_CONF or PYTORCH_ALLOC_CONF; the log line says which.
     */
    @Test
    void cudaAllocatorGetsExpandableSegmentsUnlessTheUserChose() throws Throwable {
        String users = LibTorch.preferExpandableSegments(
                name -> name.equals("PYTORCH_ALLOC_CONF") ? "max_split_size_mb:512" : null);
        assertEquals("PYTORCH_ALLOC_CONF=max_split_size_mb:512 (the user's)", users);
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv("PYTORCH_CUDA_ALLOC_CONF") == null
                && System.getenv("PYTORCH_ALLOC_CONF") == null, "the test's own environment sets an allocator");
        assertEquals("PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (tenmin's default)",
                LibTorch.preferExpandableSegments());
        Linker linker = Linker.nativeLinker();
        MethodHandle getenv = linker.downcallHandle(linker.defaultLookup().find("getenv").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = (MemorySegment) getenv.invokeExact(a.allocateFrom("PYTORCH_CUDA_ALLOC_CONF"));
            assertEquals(LibTorch.CUDA_ALLOC_CONF, v.equals(MemorySegment.NULL) ? null : v.reinterpret(64).getString(0));
        }
    }
}
