package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tenmin.core.WithProperty;

/**
 * ATen's math switches reached through their C++ symbols: what {@link LibTorch#setMathMode} sets is what ATen's
 * own getters report afterwards (the CPU libtorch carries the same global context as a CUDA one), and a
 * backend on CUDA would start in {@link LibTorch.MathMode#EXACT}.
 */
@Tag("torch")
class MathModeTest {

    @Test
    void switchesRoundTripThroughAtensGetters() {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        try {
            assertEquals("TF32 on, bf16 split-K reduction in bf16", lib.setMathMode(LibTorch.MathMode.REFERENCE));
            boolean[] on = lib.mathSwitches();
            assertNotNull(on, "this libtorch exports the getters");
            assertArrayEquals(new boolean[] {true, true}, on);
            assertEquals("TF32 off, bf16 split-K reduction in fp32", lib.setMathMode(LibTorch.MathMode.EXACT));
            assertArrayEquals(new boolean[] {false, false}, lib.mathSwitches());
            lib.setMathMode(new LibTorch.MathMode(false, true));
            assertArrayEquals(new boolean[] {false, true}, lib.mathSwitches(), "the two switches are independent");
            assertEquals("TF32 on, bf16 split-K reduction in fp32", lib.setMathMode(LibTorch.MathMode.COMMANDS));
            assertArrayEquals(new boolean[] {true, false}, lib.mathSwitches(), "the commands' mode: TF32, fp32 reduction");
        } finally {
            lib.setMathMode(LibTorch.MathMode.EXACT);
        }
    }

    @Test
    void cudnnBenchmarkModeRoundTripsThroughAtensGetter() {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        Boolean before = lib.cudnnBenchmark();
        assertNotNull(before, "this libtorch exports the getter");
        assertEquals(false, before, "ATen's default, which the commands keep unless TENMIN_CUDNN_BENCHMARK=1");
        try {
            assertEquals("cuDNN benchmark mode on", lib.setCudnnBenchmark(true));
            assertEquals(true, lib.cudnnBenchmark());
            assertEquals("TF32 on, bf16 split-K reduction in fp32, cuDNN benchmark mode on",
                    WithProperty.with(LibTorch.CUDNN_BENCHMARK.property(), "1",
                            () -> lib.applyCommandSwitches(LibTorch.MathMode.COMMANDS)));
            lib.setCudnnBenchmark(false);
            assertEquals("TF32 on, bf16 split-K reduction in fp32", lib.applyCommandSwitches(LibTorch.MathMode.COMMANDS),
                    "off by default: the switch is not touched");
            assertEquals(false, lib.cudnnBenchmark());
        } finally {
            lib.setCudnnBenchmark(false);
            lib.setMathMode(LibTorch.MathMode.EXACT);
        }
    }
}
