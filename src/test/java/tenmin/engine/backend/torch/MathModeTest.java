package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

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
}
