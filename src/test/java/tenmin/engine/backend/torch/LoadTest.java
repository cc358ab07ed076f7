package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}
