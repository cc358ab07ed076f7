package tenmin.engine.parity;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.AttentionGrads;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.NormResult;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Backend.Unary;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Every op of the contract, forward and backward, on two backends with identical inputs: the error of
 * each output is {@code max|candidate - reference| / max|reference|} (the fixtures' convention).
 * Inputs are uniform in [-1, 1) from a fixed LCG, uploaded in the dtype under test, so both backends see
 * the same rounded values. Dimension legend: N batch, C/O channels, H/W spatial, T tokens, D head dim.
 */
public final class BackendParity {
    private BackendParity() {
    }

    /** The error of one output of one op. {@code error} is non-null when the op threw. */
    public record Result(String op, DType dtype, double maxAbs, double maxRef, double tolerance, String error) {
        public double rel() {
            return maxRef == 0 ? maxAbs : maxAbs / maxRef;
        }

        public boolean ok() {
            return error == null && rel() <= tolerance;
        }

        @Override
        public String toString() {
            if (error != null) {
                return String.format(Locale.ROOT, "%-34s %-4s FAILED: %s", op, dtype, error);
            }
            return String.format(Locale.ROOT, "%-34s %-4s rel %.2e (max abs %.2e, max |ref| %.2e) %s", op, dtype, rel(),
                    maxAbs, maxRef, ok() ? "ok" : "> tol " + tolerance);
        }
    }

    /** The pure-Java {@code cpu} backend, created by class name; empty when it is not on the class path. */
    public static Optional<Backend> cpuBackend() {
        try {
            Class<?> c = Class.forName("tenmin.engine.backend.cpu.CpuBackend");
            return Optional.of((Backend) c.getConstructor().newInstance());
        } catch (ClassNotFoundException e) {
            return Optional.empty();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot create the cpu backend: " + e, e);
        }
    }

    /** Deterministic inputs in one scope; the same seed gives the same values on every backend. */
    static final class Inputs {
        private final Scope scope;
        private final DType dtype;
        private long state;

        Inputs(Scope scope, DType dtype, long seed) {
            this.scope = scope;
            this.dtype = dtype;
            this.state = seed * 6364136223846793005L + 1442695040888963407L;
        }

        private float next() {
            state = state * 6364136223846793005L + 1442695040888963407L;
            return ((state >>> 40) / (float) (1L << 24)) * 2f - 1f;
        }

        /** Uniform values in [-1, 1) of the dtype under test. */
        Tensor t(int... dims) {
            return scaled(1, dims);
        }

        /** Uniform values in [-scale, scale). */
        Tensor scaled(float scale, int... dims) {
            Shape shape = Shape.of(dims);
            float[] v = new float[shape.numelInt()];
            for (int i = 0; i < v.length; i++) {
                v[i] = next() * scale;
            }
            return scope.fromHost(v, shape, dtype);
        }

        /** Values in [0.5, 1.5) (divisors, log and sqrt arguments). */
        Tensor positive(int... dims) {
            Shape shape = Shape.of(dims);
            float[] v = new float[shape.numelInt()];
            for (int i = 0; i < v.length; i++) {
                v[i] = 1 + next() / 2;
            }
            return scope.fromHost(v, shape, dtype);
        }

        DType dtype() {
            return dtype;
        }
    }

    /** One op (or a forward/backward pair) as run on any backend; returns the outputs to compare. */
    @FunctionalInterface
    interface Case {
        List<Tensor> run(Backend b, Scope s, Inputs in);
    }

    private record Named(String name, Case c) {
    }

    /** Runs every case on both backends and returns one result per compared output. */
    public static List<Result> compare(Backend reference, Backend candidate, DType dtype, double tolerance) {
        return compare(reference, candidate, dtype, tolerance, name -> true);
    }

    /** Like {@link #compare(Backend, Backend, DType, double)} for the cases whose name passes {@code filter}. */
    public static List<Result> compare(Backend reference, Backend candidate, DType dtype, double tolerance,
                                       java.util.function.Predicate<String> filter) {
        List<Result> out = new ArrayList<>();
        long seed = 1;
        for (Named n : cases()) {
            seed++;
            if (!filter.test(n.name())) {
                continue;
            }
            try (Scope rs = Scope.root(reference, "parity-reference"); Scope cs = Scope.root(candidate, "parity")) {
                List<Tensor> ro = n.c().run(reference, rs, new Inputs(rs, dtype, seed));
                List<Tensor> co = n.c().run(candidate, cs, new Inputs(cs, dtype, seed));
                for (int i = 0; i < ro.size(); i++) {
                    String name = ro.size() == 1 ? n.name() : n.name() + "[" + i + "]";
                    out.add(diff(name, dtype, tolerance, ro.get(i), co.get(i)));
                }
            } catch (RuntimeException e) {
                out.add(new Result(n.name(), dtype, Double.NaN, Double.NaN, tolerance,
                        e.getClass().getSimpleName() + ": " + e.getMessage()));
            }
        }
        return out;
    }

    private static Result diff(String name, DType dtype, double tol, Tensor ref, Tensor cand) {
        if (!ref.shape().equals(cand.shape()) || ref.dtype() != cand.dtype()) {
            return new Result(name, dtype, Double.NaN, Double.NaN, tol, "shape/dtype " + cand.describe()
                    + ", expected " + ref.describe());
        }
        float[] a = ref.dtype() == DType.I64 ? toFloats(ref.toHostLongs()) : ref.toHost();
        float[] b = cand.dtype() == DType.I64 ? toFloats(cand.toHostLongs()) : cand.toHost();
        double maxAbs = 0;
        double maxRef = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            maxAbs = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(maxAbs, d);
            maxRef = Math.max(maxRef, Math.abs(a[i]));
        }
        return new Result(name, dtype, maxAbs, maxRef, tol, null);
    }

    private static float[] toFloats(long[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    private static final OutputMask ALL = OutputMask.ALL;

    /** The cases: every contract op, small shapes that still exercise the interesting paths. */
    static List<Named> cases() {
        List<Named> c = new ArrayList<>();
        c.add(new Named("full", (b, s, in) -> List.of(s.full(Shape.of(3, 4), in.dtype(), 0.3))));
        c.add(new Named("cast to f32 and back", (b, s, in) -> {
            Tensor x = in.t(5, 7);
            Tensor f = b.cast(s, x, DType.F32);
            return List.of(f, b.cast(s, f, in.dtype()));
        }));
        c.add(new Named("add/mul/div (broadcast)", (b, s, in) -> {
            Tensor x = in.t(2, 3, 4);
            Tensor y = in.positive(3, 4);
            return List.of(b.add(s, x, y, -0.5), b.mul(s, x, y), b.div(s, x, y));
        }));
        c.add(new Named("affine/clamp", (b, s, in) -> {
            Tensor x = in.t(4, 5);
            return List.of(b.affine(s, x, 1.5, -0.25), b.clamp(s, x, -0.5, 0.25));
        }));
        for (Unary u : Unary.values()) {
            c.add(new Named("unary " + u, (b, s, in) -> {
                Tensor x = u == Unary.LOG || u == Unary.SQRT || u == Unary.RSQRT ? in.positive(3, 5) : in.scaled(2, 3, 5);
                return List.of(b.unary(s, u, x));
            }));
        }
        c.add(new Named("silu + backward", (b, s, in) -> {
            Tensor x = in.scaled(3, 4, 6);
            Tensor g = in.t(4, 6);
            return List.of(b.silu(s, x), b.siluBackward(s, g, x));
        }));
        for (GeluApproximation a : GeluApproximation.values()) {
            c.add(new Named("gelu " + a + " + backward", (b, s, in) -> {
                Tensor x = in.scaled(3, 4, 6);
                Tensor g = in.t(4, 6);
                return List.of(b.gelu(s, x, a), b.geluBackward(s, g, x, a));
            }));
        }
        c.add(new Named("quickGelu + backward", (b, s, in) -> {
            Tensor x = in.scaled(3, 4, 6);
            Tensor g = in.t(4, 6);
            return List.of(b.quickGelu(s, x), b.quickGeluBackward(s, g, x));
        }));
        c.add(new Named("matmul (all layouts)", (b, s, in) -> {
            Tensor a2 = in.t(6, 8);
            Tensor b2 = in.t(8, 5);
            Tensor a3 = in.t(2, 6, 8);
            Tensor b3 = in.t(2, 8, 5);
            Tensor a3t = in.t(2, 8, 6);
            Tensor b2t = in.t(5, 8);
            return List.of(b.matmul(s, a2, b2, false, false), b.matmul(s, a3, b3, false, false),
                    b.matmul(s, a3, b2, false, false), b.matmul(s, a3t, b2t, true, true),
                    b.matmul(s, a3t, b3, true, false));
        }));
        c.add(new Named("long reductions (fp32 accumulation)", (b, s, in) -> {
            // 4096 ones: a bf16 accumulator would stop at 256; fp32 accumulation gives the exact count.
            Tensor a = s.full(Shape.of(2, 4096), in.dtype(), 1.0);
            Tensor w = s.full(Shape.of(3, 4096), in.dtype(), 1.0);
            Tensor x = s.full(Shape.of(1, 512, 4, 4), in.dtype(), 1.0);
            Tensor k = s.full(Shape.of(2, 512, 3, 3), in.dtype(), 1.0);
            return List.of(b.linear(s, a, w, null), b.convolution(s, x, k, null, 1, 1),
                    b.sum(s, a, new int[] {1}, false));
        }));
        c.add(new Named("linear (+bias)", (b, s, in) -> {
            Tensor x = in.t(2, 3, 16);
            Tensor w = in.t(12, 16);
            Tensor bias = in.t(12);
            return List.of(b.linear(s, x, w, bias), b.linear(s, x, w, null));
        }));
        c.add(new Named("geglu + backward", (b, s, in) -> {
            Tensor x = in.t(2, 3, 16);
            return List.of(b.geglu(s, x), b.gegluBackward(s, in.t(2, 3, 8), x));
        }));
        c.add(new Named("linearGeglu", (b, s, in) -> {   // CUDA: value and gate on their own weight rows
            Tensor x = in.t(2, 3, 16);
            Tensor w = in.t(24, 16);
            Tensor bias = in.t(24);
            return List.of(b.linearGeglu(s, x, w, bias), b.linearGeglu(s, x, w, null));
        }));
        c.add(new Named("loraAdd + backward", (b, s, in) -> {
            Tensor y = in.t(2, 3, 12);
            Tensor x = in.t(2, 3, 16);
            Tensor down = in.t(4, 16);
            Tensor up = in.t(12, 4);
            Backend.LoraResult r = b.loraAdd(s, y, x, down, up, 0.75);
            Backend.LoraGrads g = b.loraAddBackward(s, in.t(2, 3, 12), x, r.hidden(), down, up, 0.75, true, true, true);
            Backend.LoraGrads upOnly = b.loraAddBackward(s, in.t(2, 3, 12), x, r.hidden(), down, up, 0.75, false, false,
                    true);
            return List.of(r.out(), r.hidden(), g.dx(), g.dDown(), g.dUp(), upOnly.dUp());
        }));
        c.add(new Named("loraMerge (linear, conv)", (b, s, in) -> List.of(b.loraMerge(s, in.t(12, 16), in.t(4, 16),
                in.t(12, 4), 0.75), b.loraMerge(s, in.t(6, 4, 3, 3), in.t(5, 4, 3, 3), in.t(6, 5, 1, 1), 0.5))));
        c.add(new Named("axpyIntoAll (fp32 targets back to back in one buffer where the backend aliases)", (b, s, in) -> {
            Tensor raw = in.t(31);
            Tensor arena = raw.dtype() == DType.F32 ? raw : b.cast(s, raw, DType.F32);
            List<Tensor> ys = new ArrayList<>();
            List<Tensor> xs = new ArrayList<>();
            int offset = 0;
            for (int n : new int[] {6, 4, 10, 3, 8}) {
                ys.add(b.canAlias() ? b.viewRange(s, arena, offset, Shape.of(n)) : b.narrow(s, arena, 0, offset, n));
                xs.add(in.t(n));
                offset += n;
            }
            b.axpyIntoAll(ys, xs);
            return ys;
        }));
        c.add(new Named("linear backward", (b, s, in) -> {
            Tensor x = in.t(2, 3, 16);
            Tensor w = in.t(12, 16);
            Tensor dy = in.t(2, 3, 12);
            LayerGrads all = b.linearBackward(s, dy, x, w, ALL);
            LayerGrads weightOnly = b.linearBackward(s, dy, x, w, new OutputMask(false, true, false));
            return List.of(all.dx(), all.dWeight(), all.dBias(), weightOnly.dWeight());
        }));
        for (int stride : new int[] {1, 2}) {
            c.add(new Named("conv3x3 s" + stride + " + backward", (b, s, in) -> {
                Tensor x = in.t(2, 4, 8, 8);
                Tensor w = in.scaled(0.5f, 6, 4, 3, 3);
                Tensor bias = in.t(6);
                Tensor y = b.convolution(s, x, w, bias, stride, 1);
                Tensor g = in.t(y.shape().dims());
                LayerGrads lg = b.convolutionBackward(s, g, x, w, stride, 1, ALL);
                return List.of(y, lg.dx(), lg.dWeight(), lg.dBias());
            }));
        }
        c.add(new Named("conv1x1 + backward", (b, s, in) -> {
            Tensor x = in.t(2, 8, 4, 4);
            Tensor w = in.t(4, 8, 1, 1);
            Tensor y = b.convolution(s, x, w, null, 1, 0);
            LayerGrads lg = b.convolutionBackward(s, in.t(2, 4, 4, 4), x, w, 1, 0, new OutputMask(true, true, false));
            return List.of(y, lg.dx(), lg.dWeight());
        }));
        c.add(new Named("groupNorm + backward", (b, s, in) -> {
            Tensor x = in.scaled(2, 2, 8, 4, 4);
            Tensor gamma = in.positive(8);
            Tensor beta = in.t(8);
            NormResult r = b.groupNorm(s, x, gamma, beta, 4, 1e-5);
            LayerGrads lg = b.groupNormBackward(s, in.t(2, 8, 4, 4), x, r, gamma, 4, ALL);
            return List.of(r.y(), r.mean(), r.rstd(), lg.dx(), lg.dWeight(), lg.dBias());
        }));
        c.add(new Named("groupNormInference32", (b, s, in) -> {   // CUDA: statistics + batch norm (16 bits and fp32)
            Tensor x = in.scaled(2, 2, 8, 4, 4);
            Tensor gamma32 = b.cast(s, in.positive(8), DType.F32);
            Tensor beta32 = b.cast(s, in.t(8), DType.F32);
            return List.of(b.groupNormInference32(s, x, gamma32, beta32, 4, 1e-5));
        }));
        c.add(new Named("layerNorm + backward", (b, s, in) -> {
            Tensor x = in.scaled(2, 2, 5, 16);
            Tensor gamma = in.positive(16);
            Tensor beta = in.t(16);
            NormResult r = b.layerNorm(s, x, gamma, beta, 1e-5);
            LayerGrads lg = b.layerNormBackward(s, in.t(2, 5, 16), x, r, gamma, ALL);
            return List.of(r.y(), r.mean(), r.rstd(), lg.dx(), lg.dWeight(), lg.dBias());
        }));
        for (boolean causal : new boolean[] {false, true}) {
            c.add(new Named("attention" + (causal ? " causal" : "") + " + backward", (b, s, in) -> {
                int tk = causal ? 12 : 20;
                Tensor q = in.t(2, 2, 12, 16);
                Tensor k = in.t(2, 2, tk, 16);
                Tensor v = in.t(2, 2, tk, 16);
                AttentionResult r = b.attention(s, q, k, v, causal, 0.25);
                AttentionGrads g = b.attentionBackward(s, in.t(2, 2, 12, 16), q, k, v, r, causal, 0.25);
                return List.of(r.out(), r.logSumExp(), g.dq(), g.dk(), g.dv());
            }));
        }
        for (boolean causal : new boolean[] {false, true}) {
            c.add(new Named("attention heads" + (causal ? " causal" : "") + " + backward", (b, s, in) -> {
                int tk = causal ? 12 : 20;
                Tensor q = in.t(2, 12, 32);
                Tensor k = in.t(2, tk, 32);
                Tensor v = in.t(2, tk, 32);
                AttentionResult r = b.attentionHeads(s, q, k, v, 2, causal, 0.25);
                AttentionGrads g = b.attentionHeadsBackward(s, in.t(2, 12, 32), q, k, v, 2, r, causal, 0.25);
                return List.of(r.out(), r.logSumExp(), g.dq(), g.dk(), g.dv());
            }));
        }
        c.add(new Named("upsampleNearest2x + backward", (b, s, in) -> {
            Tensor x = in.t(2, 3, 4, 5);
            return List.of(b.upsampleNearest2x(s, x), b.upsampleNearest2xBackward(s, in.t(2, 3, 8, 10)));
        }));
        c.add(new Named("sum/mean", (b, s, in) -> {
            Tensor x = in.t(3, 4, 5);
            return List.of(b.sum(s, x, new int[] {1}, false), b.sum(s, x, new int[] {0, 2}, true),
                    b.sum(s, x, new int[0], false), b.mean(s, x, new int[] {-1}, true), b.mean(s, x, new int[0], false));
        }));
        c.add(new Named("mseLoss + backward", (b, s, in) -> {
            Tensor p = in.t(2, 4, 8, 8);
            Tensor t = in.t(2, 4, 8, 8);
            Tensor loss = b.mseLoss(s, p, t);
            return List.of(loss, b.mseLossBackward(s, s.full(Shape.scalar(), in.dtype(), 1.0), p, t));
        }));
        c.add(new Named("embedding + backward", (b, s, in) -> {
            Tensor w = in.t(10, 6);
            Tensor ids = s.fromHost(new long[] {3, 9, 0, 3, 3, 7}, 2, 3);
            return List.of(b.embedding(s, w, ids), b.embeddingBackward(s, in.t(2, 3, 6), ids, 10));
        }));
        c.add(new Named("sinusoidalEmbedding", (b, s, in) -> List.of(
                b.sinusoidalEmbedding(s, s.fromHost(new long[] {0, 1, 500, 999}, 4), 32))));
        c.add(new Named("layout ops", (b, s, in) -> {
            Tensor x = in.t(2, 3, 4, 5);
            Tensor y = in.t(2, 2, 4, 5);
            return List.of(b.permute(s, x, 0, 2, 3, 1), b.narrow(s, x, 1, 1, 2),
                    b.narrowBackward(s, y, Shape.of(2, 5, 4, 5), 1, 3), b.cat(s, List.of(x, y), 1),
                    b.pad2d(s, x, 1, 2, 0, 1), b.expand(s, in.t(4, 1), Shape.of(3, 4, 6)),
                    b.reshape(s, x, Shape.of(6, 20)));
        }));
        c.add(new Named("in-place ops", (b, s, in) -> {
            Tensor y = in.t(4, 6);
            b.axpyInto(y, -0.75, in.t(4, 6));
            b.scaleInto(y, 1.5);
            Tensor z = s.zeros(Shape.of(24), in.dtype());
            b.copyInto(z, y);
            Tensor w = in.t(4, 6);
            b.fillInto(w, 0.125);
            // a gradient in the case's dtype added into an fp32 one (the LoCon parameters' accumulation)
            Tensor g32 = b.cast(s, in.t(4, 6), DType.F32);
            b.axpyInto(g32, 0.5, in.t(4, 6));
            return List.of(y, z, w, g32);
        }));
        c.add(new Named("randn/randUniform (same stream)", (b, s, in) -> List.of(
                b.randn(s, Shape.of(64, 64), in.dtype(), new Generator(42)),
                b.randUniform(s, Shape.of(1000), in.dtype(), -2, 3, new Generator(43, 1000)))));
        return c;
    }
}
