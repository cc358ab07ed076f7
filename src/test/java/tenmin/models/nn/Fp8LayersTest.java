package tenmin.models.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.Fp8E4m3;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.CpuBackendTests;

/**
 * Frozen layers whose weights are stored as fp8 ({@link Params.Storage#fp8}) compute exactly what the same layers
 * compute with weights that were rounded to fp8 beforehand (the codec applied here, to a file's values, after the
 * rounding to {@code via}): Linear, Conv2d, GroupNorm (both modes), LayerNorm and an embedding table (kept in the
 * compute dtype), forward and the input's gradient, in fp32, bf16 and fp16 on the cpu backend. The rounding matters:
 * with the file's own values the outputs differ.
 */
class Fp8LayersTest extends CpuBackendTests {
    @TempDir
    Path tmp;

    private static final Map<String, long[]> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("lin.weight", new long[] {8, 12});
        SHAPES.put("lin.bias", new long[] {8});
        SHAPES.put("conv.weight", new long[] {6, 4, 3, 3});
        SHAPES.put("conv.bias", new long[] {6});
        SHAPES.put("gn.weight", new long[] {4});
        SHAPES.put("gn.bias", new long[] {4});
        SHAPES.put("ln.weight", new long[] {12});
        SHAPES.put("ln.bias", new long[] {12});
        SHAPES.put("emb.weight", new long[] {10, 12});
    }

    private static float[] random(SplittableRandom r, long[] shape, double scale) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * scale + (shape.length == 1 && scale > 0.2 ? 1 : 0));
        }
        return v;
    }

    /** The layers' weights, and the same rounded to {@code via}, then to fp8 (not the embedding table) when asked. */
    private Path file(String name, DType via, boolean rounded) throws Exception {
        SplittableRandom r = new SplittableRandom(5);
        SafetensorsWriter w = new SafetensorsWriter();
        for (Map.Entry<String, long[]> e : SHAPES.entrySet()) {
            float[] v = random(r, e.getValue(), e.getKey().endsWith("bias") ? 0.1 : 0.3);
            if (rounded && !e.getKey().startsWith("emb")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = Fp8E4m3.round(Half.roundTo(v[i], via.stDType()));
                }
            }
            w.addFloats(e.getKey(), StDType.F32, e.getValue(), v);
        }
        Path p = tmp.resolve(name + ".safetensors");
        w.write(p);
        return p;
    }

    /** Every layer on inputs of {@code compute}: outputs, then the gradient of their sum with respect to the inputs. */
    private static List<float[]> run(Params p, DType compute, boolean checkFp8) {
        Scope scope = p.scope();
        Linear lin = new Linear(p.at("lin"), 12, 8, true);
        Conv2d conv = new Conv2d(p.at("conv"), 4, 6, 3, 1, 1, true);
        GroupNorm gn32 = new GroupNorm(p.at("gn"), 2, 4, 1e-5, true);
        LayerNorm ln = new LayerNorm(p.at("ln"), 12, 1e-5);
        Tensor table = p.at("emb").getEmbedding("weight", Shape.of(10, 12));
        if (checkFp8) {
            assertEquals(DType.F8_E4M3, lin.weight().dtype());
            assertEquals(DType.F8_E4M3, lin.bias().dtype());
            assertEquals(DType.F8_E4M3, conv.weight().dtype());
            assertEquals(compute, table.dtype(), "embedding tables stay in the compute dtype");
        }
        SplittableRandom r = new SplittableRandom(9);
        try (Scope step = scope.child("step")) {
            Functional f = Functional.training(step);
            Tensor x = step.fromHost(random(r, new long[] {3, 12}, 1), Shape.of(3, 12), compute).requireGrad();
            Tensor img = step.fromHost(random(r, new long[] {2, 4, 5, 5}, 1), Shape.of(2, 4, 5, 5), compute).requireGrad();
            Tensor ids = step.fromHost(new long[] {3, 0, 9, 3}, 4);
            List<Tensor> outs = List.of(lin.forward(f, x), conv.forward(f, img), gn32.forward(f, img),
                    new GroupNorm(p.at("gn"), 2, 4, 1e-5, false).forward(f, img), ln.forward(f, x),
                    f.embedding(table, ids));
            Tensor loss = null;
            for (Tensor o : outs) {
                Tensor s = f.cast(f.sum(o), DType.F32);
                loss = loss == null ? s : f.add(loss, s);
            }
            List<float[]> result = new java.util.ArrayList<>();
            for (Tensor o : outs) {
                result.add(o.toHost());
            }
            f.backward(loss);
            result.add(x.grad().toHost());
            result.add(img.grad().toHost());
            return result;
        }
    }

    private static List<float[]> layers(Path file, Params.Storage storage, boolean checkFp8) {
        try (SafetensorsFile f = SafetensorsFile.open(file);
             Scope weights = Scope.root(backend, "weights")) {
            return run(CheckpointParams.of(f, "", weights, storage), storage.compute(), checkFp8);
        }
    }

    @Test
    void fp8WeightsComputeWhatWeightsRoundedToFp8BeforehandCompute() throws Exception {
        Path original = file("original", DType.F32, false);
        record Case(DType compute, DType via) {
        }
        for (Case c : List.of(new Case(DType.F32, DType.F32), new Case(DType.BF16, DType.BF16),
                new Case(DType.F16, DType.F16), new Case(DType.BF16, DType.F32))) {
            Path rounded = file("rounded-" + c.compute() + "-" + c.via(), c.via(), true);
            List<float[]> fp8 = layers(original, Params.Storage.fp8(c.compute(), c.via()), true);
            List<float[]> want = layers(rounded, Params.Storage.of(c.compute()), false);
            List<float[]> unrounded = layers(original, Params.Storage.of(c.compute()), false);
            String[] names = {"linear", "conv2d", "group norm (fp32)", "group norm", "layer norm", "embedding", "dx", "dimg"};
            for (int i = 0; i < want.size(); i++) {
                assertArrayEquals(want.get(i), fp8.get(i), c + ": " + names[i]);
            }
            for (int i : new int[] {0, 1, 2, 4, 6}) {
                assertFalse(Arrays.equals(unrounded.get(i), fp8.get(i)), c + ": " + names[i] + " saw fp8 weights");
            }
            assertArrayEquals(unrounded.get(5), fp8.get(5), c + ": the embedding table is not rounded to fp8");
        }
        assertEquals(0, backend.liveTensors());
    }

    /** The bytes a model's weights take under fp8: one a value, the embedding tables in the compute dtype. */
    @Test
    void metaParamsCountOneByteAWeightAndTheEmbeddingsInTheComputeDtype() {
        MetaParams p = MetaParams.of("");
        new Linear(p.at("lin"), 12, 8, true);
        assertNull(p.at("emb").getEmbedding("weight", Shape.of(10, 12)));
        long weights = 8 * 12 + 8;
        long table = 10 * 12;
        assertEquals(weights + 2 * table, p.bytes(Params.Storage.fp8(DType.BF16, DType.BF16)));
        assertEquals(2 * (weights + table), p.bytes(Params.Storage.of(DType.BF16)));
        assertEquals(4 * (weights + table), p.bytes(Params.Storage.of(DType.F32)));
        assertEquals(java.util.Set.of("emb.weight"), p.embeddings());
    }
}
