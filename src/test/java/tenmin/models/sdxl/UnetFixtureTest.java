package tenmin.models.sdxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * The U-Net against sgm's outputs in every fixtures model folder ({@code unet-io.safetensors}): eps in
 * fp32 (relative error below 1e-5, fixtures README §2), the vector conditioning y, and eps with bf16
 * weights and activations (bf16 storage rounding only, against the same fp32 reference).
 */
class UnetFixtureTest extends CpuBackendTests {
    /** Case prefixes of a unet-io file ({@code sq}, {@code wide}): every {@code <case>.eps}. */
    static List<String> cases(SafetensorsFile io) {
        TreeSet<String> out = new TreeSet<>();
        for (String key : io.names()) {
            if (key.endsWith(".eps") && !key.contains(".lora.")) {
                out.add(key.substring(0, key.length() - ".eps".length()));
            }
        }
        return new ArrayList<>(out);
    }

    @TestFactory
    List<DynamicTest> unetIo() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            List<String> cases;
            try (SafetensorsFile io = SafetensorsFile.open(m.file("unet-io.safetensors"))) {
                cases = cases(io);
            }
            for (String c : cases) {
                String tag = " [" + m.name() + "] " + c;
                tests.add(dynamicTest("unet conditioning y" + tag, () -> conditioning(m, c)));
                tests.add(dynamicTest("unet forward" + tag, () -> forward(m, c, DType.F32, 1e-5)));
                // bf16 weights and activations (fp32 group norms): rounding to 8 mantissa bits per op.
                tests.add(dynamicTest("unet forward bf16" + tag, () -> forward(m, c, DType.BF16, 3e-2)));
            }
        }
        return tests;
    }

    private static void conditioning(ModelFixture m, String c) {
        try (Scope s = Scope.root(backend, "test");
             SafetensorsFile io = SafetensorsFile.open(m.file("unet-io.safetensors"))) {
            Functional f = Functional.inference(s);
            Tensor y = SdxlConditioning.vector(f, ModelFixture.tensor(io, c + ".pooled", s),
                    ModelFixture.tensor(io, c + ".size_cond", s));
            assertVectorClose(m.name() + " " + c + ".y", io.readFloats(c + ".size_cond"), io.info(c + ".pooled").shape()[1],
                    io.readFloats(c + ".y"), y.toHost());
            // Integer pixel sizes (I64) give the same vector as their float values.
            float[] sizes = io.readFloats(c + ".size_cond");
            long[] asLongs = new long[sizes.length];
            for (int i = 0; i < sizes.length; i++) {
                asLongs[i] = (long) sizes[i];
            }
            Tensor yLong = SdxlConditioning.vector(f, ModelFixture.tensor(io, c + ".pooled", s),
                    s.fromHost(asLongs, sizes.length / SdxlConditioning.SIZE_VALUES, SdxlConditioning.SIZE_VALUES));
            org.junit.jupiter.api.Assertions.assertArrayEquals(y.toHost(), yLong.toHost());
            List<int[]> rows = new ArrayList<>();
            for (int i = 0; i < asLongs.length; i += SdxlConditioning.SIZE_VALUES) {
                int[] row = new int[SdxlConditioning.SIZE_VALUES];
                for (int j = 0; j < row.length; j++) {
                    row[j] = (int) asLongs[i + j];
                }
                rows.add(row);
            }
            Tensor yRows = SdxlConditioning.vector(f, ModelFixture.tensor(io, c + ".pooled", s),
                    SdxlConditioning.sizeTensor(s, rows));
            org.junit.jupiter.api.Assertions.assertArrayEquals(y.toHost(), yRows.toHost());
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    /**
     * y = cat(pooled, E(size values)): pooled copied exactly; each embedding element within two ulps of
     * its fp32 argument v·f_k plus 2e-7. The reference computes the argument in fp32 with its own exp and
     * cos (1-ulp vector functions), so at v ≈ 1000 one ulp of the argument (6e-5) moves cos by as much —
     * the conditioning of the formula itself, not a tolerance for a wrong one.
     */
    static void assertVectorClose(String name, float[] sizes, long pooledWidth, float[] expected, float[] actual) {
        int width = expected.length / (sizes.length / SdxlConditioning.SIZE_VALUES);
        int half = SdxlConditioning.SIZE_EMBED_DIM / 2;
        assertEquals(expected.length, actual.length, name + " length");
        for (int i = 0; i < expected.length; i++) {
            int row = i / width;
            int col = i % width;
            double bound = 0;
            if (col >= pooledWidth) {
                int e = (int) ((col - pooledWidth) / SdxlConditioning.SIZE_EMBED_DIM);
                int k = (int) ((col - pooledWidth) % SdxlConditioning.SIZE_EMBED_DIM) % half;
                double arg = sizes[row * SdxlConditioning.SIZE_VALUES + e] * Math.exp(-Math.log(10000.0) * k / half);
                bound = 2 * Math.ulp((float) arg) + 2e-7;
            }
            if (!(Math.abs(expected[i] - actual[i]) <= bound)) {
                throw new AssertionError(name + ": element [" + row + ", " + col + "] expected " + expected[i] + " got "
                        + actual[i] + " (bound " + bound + ")");
            }
        }
    }

    private static void forward(ModelFixture m, String c, DType dtype, double tol) {
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        try (Scope model = Scope.root(backend, "model");
             SafetensorsFile ckpt = SafetensorsFile.open(m.file("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(m.file("unet-io.safetensors"))) {
            Unet unet = Unet.fromCheckpoint(ckpt, config, model, dtype);
            try (Scope step = model.child("step")) {
                Functional f = Functional.inference(step);
                Tensor eps = unet.forward(f, ModelFixture.tensor(io, c + ".x", step),
                        ModelFixture.tensor(io, c + ".timesteps", step), ModelFixture.tensor(io, c + ".context", step),
                        ModelFixture.tensor(io, c + ".y", step));
                assertEquals(DType.F32, eps.dtype());
                Numerics.assertRelClose(m.name() + " " + c + ".eps (" + dtype + ")", io.info(c + ".eps").shape(),
                        io.readFloats(c + ".eps"), eps.toHost(), tol);
            }
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }
}
