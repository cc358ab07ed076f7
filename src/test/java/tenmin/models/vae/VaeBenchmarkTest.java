package tenmin.models.vae;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.models.SdxlConfig;
import tenmin.testing.RecordingBackend;

/** {@code tenmin bench vae}'s measurement: its two results, and --cuda-profile's region around the last encode. */
class VaeBenchmarkTest {
    @Test
    void measuresEncodeAndDecodeAndMarksTheLastEncodeForTheProfiler() {
        List<String> calls = new ArrayList<>();
        try (CpuBackend cpu = new CpuBackend(2)) {
            VaeBenchmark.Config c = new VaeBenchmark.Config(SdxlConfig.tiny().vae(), 16, 24, 1, 2, true);
            List<VaeBenchmark.Result> results = VaeBenchmark.run(RecordingBackend.wrap(cpu, calls), c);
            assertEquals(2, results.size());
            assertTrue(results.get(0).label().startsWith("encode 1x3x24x16") && results.get(1).label().startsWith("decode"));
            for (VaeBenchmark.Result r : results) {
                assertTrue(r.millis() > 0 && r.millis() >= r.issueMillis(), r.line());
            }
            assertEquals(0, cpu.liveTensors());
        }
        int open = calls.indexOf("region true");
        int close = calls.indexOf("region false");
        assertEquals(2, RecordingBackend.count(calls, 0, calls.size(), "region"));
        assertTrue(open > 0 && close > open);
        long inside = RecordingBackend.count(calls, open, close, "convolution");
        long encodes = RecordingBackend.count(calls, 0, open, "convolution");
        assertTrue(inside > 0 && encodes == 2 * inside, "the third of three encodes: " + encodes + " before, " + inside);
        assertTrue(RecordingBackend.count(calls, close, calls.size(), "convolution") > 0, "the decodes come after");
    }
}
