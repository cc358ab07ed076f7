package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Device;
import tenmin.engine.backend.torch.AtenAttention.Kernel;

/**
 * The CUDA attention kernel choice and its fallback: AUTO moves from cuDNN to flash to memory-efficient when
 * a kernel fails, once per change and with one line saying so; a kernel asked for by name, and fp32, keep
 * their failure. The last test drives the real {@link AtenAttention} on a CPU device with the CUDA path forced
 * on: every CUDA kernel fails there (missing from a CPU libtorch, refusing CPU tensors in a CUDA build), so the
 * chain runs to its end.
 */
class KernelChoiceTest {
    private final List<String> lines = new ArrayList<>();

    @Test
    void autoStartsWithCudnnFor16BitAndEfficientForFp32() {
        KernelChoice c = new KernelChoice(Kernel.AUTO, lines::add);
        assertEquals(Kernel.CUDNN, c.current(false));
        assertEquals(Kernel.EFFICIENT, c.current(true));
    }

    @Test
    void autoFallsBackCudnnFlashEfficientThenGivesUp() {
        KernelChoice c = new KernelChoice(Kernel.AUTO, lines::add);
        assertTrue(c.failed(Kernel.CUDNN, false, new TorchException("cudnn boom")));
        assertEquals(Kernel.FLASH, c.current(false));
        assertEquals(Kernel.EFFICIENT, c.current(true), "fp32 is not affected");
        assertTrue(c.failed(Kernel.FLASH, false, new TorchException("flash boom")));
        assertEquals(Kernel.EFFICIENT, c.current(false));
        assertFalse(c.failed(Kernel.EFFICIENT, false, new TorchException("last")));
        assertEquals(Kernel.EFFICIENT, c.current(false));
        assertEquals(List.of(
                "tenmin: cuDNN attention failed (cudnn boom); using flash attention from now on",
                "tenmin: flash attention failed (flash boom); using memory-efficient attention from now on"), lines);
    }

    @Test
    void aStaleFailureRetriesWithTheCurrentKernelWithoutMovingOn() {
        KernelChoice c = new KernelChoice(Kernel.AUTO, lines::add);
        c.failed(Kernel.CUDNN, false, new TorchException("x"));
        // a backward of a forward made with cuDNN before the change fails too: retry, keep flash
        assertTrue(c.failed(Kernel.CUDNN, false, new TorchException("y")));
        assertEquals(Kernel.FLASH, c.current(false));
        assertEquals(1, lines.size());
    }

    @Test
    void namedKernelsAndFp32KeepTheirFailure() {
        for (Kernel k : new Kernel[] {Kernel.CUDNN, Kernel.FLASH, Kernel.EFFICIENT}) {
            KernelChoice c = new KernelChoice(k, lines::add);
            assertEquals(k, c.current(false));
            assertEquals(k, c.current(true));
            assertFalse(c.failed(k, false, new TorchException("no")));
        }
        assertFalse(new KernelChoice(Kernel.AUTO, lines::add).failed(Kernel.EFFICIENT, true, new TorchException("no")));
        assertTrue(lines.isEmpty());
    }

    @Test
    @Tag("torch")
    void theRealForwardWalksTheChainAndReportsTheLastFailure() {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        Aten at = new Aten(lib.shim(), Device.CPU);
        AtenAttention attention = new AtenAttention(at, Kernel.AUTO, true, lines::add);
        long[] shape = {1, 2, 8, 16};
        float[] data = new float[2 * 8 * 16];
        try (NativeTensor q = at.upload(data, shape, lib.shim().dtypeBF16);
             NativeTensor k = at.upload(data, shape, lib.shim().dtypeBF16);
             NativeTensor v = at.upload(data, shape, lib.shim().dtypeBF16)) {
            assertEquals(Kernel.CUDNN, attention.kernelFor(lib.shim().dtypeBF16));
            TorchException e = assertThrows(TorchException.class, () -> attention.forward(q, k, v, false, 0.25));
            assertTrue(e.getMessage().contains("_scaled_dot_product_efficient_attention"), e.getMessage());
            assertEquals(2, lines.size(), lines.toString());
            // the CPU libtorch has no CUDA entry points; a CUDA build has them and refuses CPU tensors
            assertTrue(lines.get(0).startsWith("tenmin: cuDNN attention failed (")
                    && lines.get(0).contains("_scaled_dot_product_cudnn_attention"), lines.get(0));
            assertTrue(lines.get(1).startsWith("tenmin: flash attention failed (")
                    && lines.get(1).contains("_scaled_dot_product_flash_attention"), lines.get(1));
            assertEquals(Kernel.EFFICIENT, attention.kernelFor(lib.shim().dtypeBF16));
            assertNull(new AtenAttention(at, Kernel.AUTO).kernelFor(lib.shim().dtypeBF16), "CPU device: the CPU kernel");
        }
    }
}
