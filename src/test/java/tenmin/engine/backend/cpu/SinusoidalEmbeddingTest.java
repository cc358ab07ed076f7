package tenmin.engine.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

/**
 * SDXL's sinusoidal embeddings: cos first, {@code f_k = exp(-ln(10000) k / half)}. Checked against
 * the size-conditioning vector {@code y} of every unet-io fixture (sgm {@code timestep_embedding(v, 256)}
 * of the six size values after the pooled vector) and against the formula for the timestep width.
 */
class SinusoidalEmbeddingTest {

    @TestFactory
    List<DynamicTest> sizeEmbeddingsMatchUnetFixtures() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            Path file = dir.resolve("unet-io.safetensors");
            if (!Files.exists(file)) {
                continue;
            }
            try (SafetensorsFile st = SafetensorsFile.open(file)) {
                for (String key : st.names()) {
                    if (key.endsWith(".size_cond")) {
                        String c = key.substring(0, key.length() - ".size_cond".length());
                        tests.add(DynamicTest.dynamicTest("size embedding " + c + " [" + dir.getFileName() + "]",
                                () -> checkCase(file, c)));
                    }
                }
            }
        }
        return tests;
    }

    private static void checkCase(Path file, String c) {
        try (SafetensorsFile st = SafetensorsFile.open(file); CpuBackend be = new CpuBackend(1);
             Scope s = Scope.root(be, "test")) {
            float[] sizes = st.readFloats(c + ".size_cond");       // (B, 6)
            float[] y = st.readFloats(c + ".y");                    // (B, pooled + 6·256)
            int b = (int) st.info(c + ".size_cond").shape()[0];
            int width = y.length / b;
            int pooled = width - 6 * 256;
            Tensor emb = be.sinusoidalEmbedding(s, s.fromHost(sizes, b * 6), 256);   // (B·6, 256)
            float[] got = emb.toHost();
            float[] want = new float[got.length];
            for (int i = 0; i < b; i++) {
                System.arraycopy(y, i * width + pooled, want, i * 6 * 256, 6 * 256);
            }
            // Arguments reach max(size) in fp32; one ulp there bounds the difference between torch's
            // vectorised exp/sin and ours (measured on tiny-a: 5.7e-5 at size 1344).
            float maxSize = 0;
            for (float v : sizes) {
                maxSize = Math.max(maxSize, Math.abs(v));
            }
            Numerics.assertClose(c + ".y size part", new long[] {b, 6 * 256}, want, got, Math.ulp(maxSize), 0);
        }
    }

    @Test
    void timestepWidthFollowsTheFormula() {
        try (CpuBackend be = new CpuBackend(1); Scope s = Scope.root(be, "test")) {
            long[] t = {0, 17, 999};
            int dim = 320;
            Tensor e = be.sinusoidalEmbedding(s, s.fromHost(t, 3), dim);
            assertEquals(Shape.of(3, dim), e.shape());
            float[] want = new float[3 * dim];
            for (int i = 0; i < 3; i++) {
                for (int k = 0; k < dim / 2; k++) {
                    double f = Math.exp(-Math.log(10000) * k / (dim / 2));
                    want[i * dim + k] = (float) Math.cos(t[i] * f);
                    want[i * dim + dim / 2 + k] = (float) Math.sin(t[i] * f);
                }
            }
            // fp32 argument rounding at t = 999 moves values by up to one ulp of 999 (6e-5)
            Numerics.assertClose("timestep embedding", new long[] {3, dim}, want, e.toHost(), Math.ulp(999f), 0);
            float[] row0 = Arrays.copyOf(e.toHost(), dim);
            for (int k = 0; k < dim / 2; k++) {
                assertEquals(1f, row0[k]);
                assertEquals(0f, row0[dim / 2 + k]);
            }
        }
    }
}
