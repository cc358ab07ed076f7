package tenmin.models.vae;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

/**
 * The VAE against vae-io of every model folder (sgm Encoder/Decoder/DiagonalGaussianDistribution outputs,
 * fixtures README §3): moments, mean and log-variance of the image, the decoded latent; also with the
 * convolutions split into row bands, for a batch of two, and the posterior sample formula.
 */
class VaeFixtureTest {
    private static final double FORWARD_REL = 1e-5;

    private static CpuBackend backend;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @TestFactory
    Stream<DynamicNode> everyModelFolder() {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            String tag = " [" + dir.getFileName() + "]";
            List<DynamicTest> tests = new ArrayList<>();
            for (String name : List.of("moments", "mean", "logvar")) {
                tests.add(DynamicTest.dynamicTest("vae " + name + tag, () -> checkEncode(dir, name, 0)));
            }
            tests.add(DynamicTest.dynamicTest("vae decoded" + tag, () -> checkDecode(dir, 0)));
            // Budget 1: every 3x3 convolution runs one output row at a time; 20000: bands of a few rows.
            for (long budget : new long[] {1, 20_000}) {
                tests.add(DynamicTest.dynamicTest("vae moments, conv bands of " + budget + tag,
                        () -> checkEncode(dir, "moments", budget)));
                tests.add(DynamicTest.dynamicTest("vae decoded, conv bands of " + budget + tag,
                        () -> checkDecode(dir, budget)));
            }
            tests.add(DynamicTest.dynamicTest("vae batch of two is encoded and decoded image by image" + tag,
                    () -> checkBatch(dir)));
            tests.add(DynamicTest.dynamicTest("vae posterior sample is mean + exp(logvar/2)·noise" + tag,
                    () -> checkSample(dir)));
            folders.add(DynamicContainer.dynamicContainer("vae" + tag, tests));
        }
        return folders.stream();
    }

    private static VaeConfig config(Path dir) throws IOException {
        return VaeConfig.fromJson(new ObjectMapper().readTree(dir.resolve("config.json").toFile()).get("vae"),
                "config.json \"vae\"");
    }

    private static Tensor tensor(Scope s, SafetensorsFile file, String key) {
        return s.fromHost(file.readFloats(key), Shape.of(file.info(key).shape()), DType.F32).named(key);
    }

    private static void checkEncode(Path dir, String output, long budget) throws IOException {
        try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
             Scope model = Scope.root(backend, "vae")) {
            Vae vae = Vae.load(ckpt, model, config(dir));
            if (budget > 0) {
                vae.setConvColumnBudget(budget);
            }
            Vae.Posterior p = vae.encode(model, tensor(model, io, "image"));
            Tensor actual = switch (output) {
                case "moments" -> p.moments();
                case "mean" -> p.mean();
                default -> p.logvar();
            };
            Numerics.assertRelClose(output, io.info(output).shape(), io.readFloats(output), actual.toHost(), FORWARD_REL);
            assertEquals(Shape.of(io.info(output).shape()), actual.shape(), "shape");
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static void checkDecode(Path dir, long budget) throws IOException {
        try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
             Scope model = Scope.root(backend, "vae")) {
            Vae vae = Vae.load(ckpt, model, config(dir));
            if (budget > 0) {
                vae.setConvColumnBudget(budget);
            }
            Tensor decoded = vae.decode(model, tensor(model, io, "latent"));
            Numerics.assertRelClose("decoded", io.info("decoded").shape(), io.readFloats("decoded"), decoded.toHost(),
                    FORWARD_REL);
            assertEquals(Shape.of(io.info("decoded").shape()), decoded.shape(), "shape");
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    /**
     * A batch [fixture input, its negation] gives the fixture output in row 0 and, in row 1, exactly what
     * the negated input gives alone (images are processed one by one and concatenated in order).
     */
    private static void checkBatch(Path dir) throws IOException {
        try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
             Scope model = Scope.root(backend, "vae")) {
            Vae vae = Vae.load(ckpt, model, config(dir));
            Tensor image = tensor(model, io, "image");
            Tensor latent = tensor(model, io, "latent");
            Tensor negImage = backend.affine(model, image, -1, 0);
            Tensor negLatent = backend.affine(model, latent, -1, 0);
            float[] moments = vae.encode(model, backend.cat(model, List.of(image, negImage), 0)).moments().toHost();
            float[] decoded = vae.decode(model, backend.cat(model, List.of(latent, negLatent), 0)).toHost();
            long[] ms = io.info("moments").shape();
            long[] ds = io.info("decoded").shape();
            Numerics.assertRelClose("moments[0]", ms, io.readFloats("moments"), half(moments, 0), FORWARD_REL);
            Numerics.assertRelClose("decoded[0]", ds, io.readFloats("decoded"), half(decoded, 0), FORWARD_REL);
            Numerics.assertRelClose("moments[1]", ms, vae.encode(model, negImage).moments().toHost(), half(moments, 1), 0);
            Numerics.assertRelClose("decoded[1]", ds, vae.decode(model, negLatent).toHost(), half(decoded, 1), 0);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static void checkSample(Path dir) throws IOException {
        try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
             SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
             Scope model = Scope.root(backend, "vae")) {
            Vae vae = Vae.load(ckpt, model, config(dir));
            Vae.Posterior p = vae.encode(model, tensor(model, io, "image"));
            float[] sample = p.sample(model, new Generator(1234)).toHost();
            float[] noise = model.randn(p.mean().shape(), DType.F32, new Generator(1234)).toHost();
            float[] mean = io.readFloats("mean");
            float[] logvar = io.readFloats("logvar");
            float[] expected = new float[mean.length];
            for (int i = 0; i < expected.length; i++) {
                double lv = Math.min(20, Math.max(-30, logvar[i]));
                expected[i] = (float) (mean[i] + Math.exp(0.5 * lv) * noise[i]);
            }
            Numerics.assertRelClose("sample", io.info("mean").shape(), expected, sample, FORWARD_REL);
        }
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static float[] half(float[] a, int which) {
        float[] out = new float[a.length / 2];
        System.arraycopy(a, which * out.length, out, 0, out.length);
        return out;
    }
}
