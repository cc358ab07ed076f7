package tenmin.models.vae;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * The VAE against vae-io of every model folder (sgm Encoder/Decoder/DiagonalGaussianDistribution outputs,
 * fixtures README §3): moments, mean and log-variance of the image, the decoded latent; also with the
 * convolutions split into row bands, for a batch of two, and the posterior sample formula.
 */
class VaeFixtureTest extends CpuBackendTests {
    /** The fixtures README's forward bound: max|a-b| / max|b|. */
    static final double FORWARD_REL = 1e-5;

    @TestFactory
    Stream<DynamicNode> everyModelFolder() {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            folders.add(folder(dir, backend, "vae", FORWARD_REL, new long[] {1, 20_000}));
        }
        return folders.stream();
    }

    /**
     * Every check of one model folder on {@code backend}, as a container named {@code label [folder]};
     * the encode and decode are repeated with each convolution band budget of {@code budgets}.
     */
    static DynamicContainer folder(Path dir, Backend backend, String label, double rel, long[] budgets) {
        String tag = " [" + dir.getFileName() + "]";
        Checks c = new Checks(dir, backend, rel);
        List<DynamicTest> tests = new ArrayList<>();
        for (String name : List.of("moments", "mean", "logvar")) {
            tests.add(DynamicTest.dynamicTest("vae " + name + tag, () -> c.encode(name, 0)));
        }
        tests.add(DynamicTest.dynamicTest("vae decoded" + tag, () -> c.decode(0)));
        // Budget 1: every 3x3 convolution runs one output row at a time; 20000: bands of a few rows.
        for (long budget : budgets) {
            tests.add(DynamicTest.dynamicTest("vae moments, conv bands of " + budget + tag, () -> c.encode("moments", budget)));
            tests.add(DynamicTest.dynamicTest("vae decoded, conv bands of " + budget + tag, () -> c.decode(budget)));
        }
        tests.add(DynamicTest.dynamicTest("vae batch of two is encoded and decoded image by image" + tag, c::batch));
        tests.add(DynamicTest.dynamicTest("vae posterior sample is mean + exp(logvar/2)·noise" + tag, c::sample));
        return DynamicContainer.dynamicContainer(label + tag, tests);
    }

    /** What a check does with the loaded VAE, the fixture file and the scope. */
    @FunctionalInterface
    private interface VaeCheck {
        void run(Vae vae, SafetensorsFile io, Scope model) throws IOException;
    }

    /** The checks of one folder on one backend, each against vae-io within {@code rel}. */
    private record Checks(Path dir, Backend backend, double rel) {

        /** Loads the folder's VAE (conv column budget {@code budget}, 0 for the default), runs the check, checks for leaks. */
        private void withVae(long budget, VaeCheck check) throws IOException {
            try (SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve("checkpoint.safetensors"));
                 SafetensorsFile io = SafetensorsFile.open(dir.resolve("vae-io.safetensors"));
                 Scope model = Scope.root(backend, "vae")) {
                Vae vae = Vae.load(ckpt, model, VaeConfig.fromConfigFile(dir.resolve("config.json")));
                if (budget > 0) {
                    vae.setConvColumnBudget(budget);
                }
                check.run(vae, io, model);
            }
            assertEquals(0, backend.liveTensors(), "tensors left alive");
        }

        void encode(String output, long budget) throws IOException {
            withVae(budget, (vae, io, model) -> {
                Vae.Posterior p = vae.encode(model, ModelFixture.tensor(io, "image", model));
                Tensor actual = switch (output) {
                    case "moments" -> p.moments();
                    case "mean" -> p.mean();
                    default -> p.logvar();
                };
                Numerics.assertRelClose(output, io.info(output).shape(), io.readFloats(output), actual.toHost(), rel);
                assertEquals(Shape.of(io.info(output).shape()), actual.shape(), "shape");
            });
        }

        void decode(long budget) throws IOException {
            withVae(budget, (vae, io, model) -> {
                Tensor decoded = vae.decode(model, ModelFixture.tensor(io, "latent", model));
                Numerics.assertRelClose("decoded", io.info("decoded").shape(), io.readFloats("decoded"), decoded.toHost(),
                        rel);
                assertEquals(Shape.of(io.info("decoded").shape()), decoded.shape(), "shape");
            });
        }

        /**
         * A batch [fixture input, its negation] gives the fixture output in row 0 and, in row 1, exactly what
         * the negated input gives alone (images are processed one by one and concatenated in order).
         */
        void batch() throws IOException {
            withVae(0, (vae, io, model) -> {
                Tensor image = ModelFixture.tensor(io, "image", model);
                Tensor latent = ModelFixture.tensor(io, "latent", model);
                Tensor negImage = backend.affine(model, image, -1, 0);
                Tensor negLatent = backend.affine(model, latent, -1, 0);
                float[] moments = vae.encode(model, backend.cat(model, List.of(image, negImage), 0)).moments().toHost();
                float[] decoded = vae.decode(model, backend.cat(model, List.of(latent, negLatent), 0)).toHost();
                long[] ms = io.info("moments").shape();
                long[] ds = io.info("decoded").shape();
                Numerics.assertRelClose("moments[0]", ms, io.readFloats("moments"), half(moments, 0), rel);
                Numerics.assertRelClose("decoded[0]", ds, io.readFloats("decoded"), half(decoded, 0), rel);
                Numerics.assertRelClose("moments[1]", ms, vae.encode(model, negImage).moments().toHost(), half(moments, 1), 0);
                Numerics.assertRelClose("decoded[1]", ds, vae.decode(model, negLatent).toHost(), half(decoded, 1), 0);
            });
        }

        /** sample(gen) = mean + exp(clamp(logvar)/2) · noise, with the noise the same generator gives on this backend. */
        void sample() throws IOException {
            withVae(0, (vae, io, model) -> {
                Vae.Posterior p = vae.encode(model, ModelFixture.tensor(io, "image", model));
                float[] sample = p.sample(model, new Generator(1234)).toHost();
                float[] noise = model.randn(p.mean().shape(), DType.F32, new Generator(1234)).toHost();
                float[] mean = io.readFloats("mean");
                float[] logvar = io.readFloats("logvar");
                float[] expected = new float[mean.length];
                for (int i = 0; i < expected.length; i++) {
                    double lv = Math.min(20, Math.max(-30, logvar[i]));
                    expected[i] = (float) (mean[i] + Math.exp(0.5 * lv) * noise[i]);
                }
                Numerics.assertRelClose("sample", io.info("mean").shape(), expected, sample, rel);
            });
        }
    }

    private static float[] half(float[] a, int which) {
        float[] out = new float[a.length / 2];
        System.arraycopy(a, which * out.length, out, 0, out.length);
        return out;
    }
}
