package tenmin.engine.backend.cpu;

import java.util.Arrays;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * The pure-Java backend: fp32 arithmetic on heap arrays, a fixed thread pool, Vector API GEMM.
 *
 * <p>bf16/fp16 tensors hold fp32 values rounded to their precision; every op computes in fp32 and
 * rounds its result to the output dtype, so the GPU's storage precision is emulated. Random numbers
 * are counter based ({@link CounterRandom}). See {@link Backend} for the contract of each op; this
 * class checks arguments and dispatches to the kernel classes; creation, host copies and data
 * movement are in {@link CpuStorage}.
 */
public final class CpuBackend extends CpuStorage {
    private final int convColumnBudget;

    /** A backend using every available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** A backend with {@code threads} worker threads (the caller's thread counts as one). */
    public CpuBackend(int threads) {
        this(threads, Convolution.COL_BUDGET);
    }

    /**
     * A backend whose convolutions work in bands of output rows with at most {@code convColumnBudget} values in
     * a band's im2col buffer (default 2^22; at least one row per band). The results are the same sums for any
     * budget; tests use small budgets to exercise the banding on small images.
     */
    public CpuBackend(int threads, int convColumnBudget) {
        super(threads);
        if (convColumnBudget < 1) {
            throw new IllegalArgumentException("convolution column budget must be positive: " + convColumnBudget);
        }
        this.convColumnBudget = convColumnBudget;
    }

    // ---- elementwise ---------------------------------------------------------------------------

    private Tensor binary(Scope s, Elementwise.Binary op, Tensor a, Tensor b, double alpha, String name) {
        sameDtype(name, a, b);
        float[] ad = f(a, name);
        float[] bd = f(b, name);
        Shape out = Shape.broadcast(a.shape(), b.shape());
        require(out != null, name, "shapes do not broadcast", a, b);
        CpuTensor t = newFloat(s, out, a.dtype());
        if (out.numel() > 0) {
            Elementwise.binary(op, ad, Elementwise.broadcastStrides(a.shape(), out), bd,
                    Elementwise.broadcastStrides(b.shape(), out), (float) alpha, t.data(), out);
        }
        return done(t);
    }

    @Override
    public Tensor add(Scope s, Tensor a, Tensor b, double alpha) {
        return binary(s, Elementwise.Binary.ADD, a, b, alpha, "add");
    }

    @Override
    public Tensor mul(Scope s, Tensor a, Tensor b) {
        return binary(s, Elementwise.Binary.MUL, a, b, 1.0, "mul");
    }

    @Override
    public Tensor div(Scope s, Tensor a, Tensor b) {
        return binary(s, Elementwise.Binary.DIV, a, b, 1.0, "div");
    }

    @Override
    public Tensor affine(Scope s, Tensor x, double scale, double shift) {
        return map(s, x, "affine", (in, out, n) -> Elementwise.affine(in, (float) scale, (float) shift, out, n));
    }

    @Override
    public Tensor unary(Scope s, Unary op, Tensor x) {
        return map(s, x, "unary", (in, out, n) -> Elementwise.unary(op, in, out, n));
    }

    @Override
    public Tensor clamp(Scope s, Tensor x, double min, double max) {
        return map(s, x, "clamp", (in, out, n) -> Elementwise.clamp(in, (float) min, (float) max, out, n));
    }

    // ---- activations ---------------------------------------------------------------------------

    @Override
    public Tensor silu(Scope s, Tensor x) {
        return map(s, x, "silu", Elementwise::silu);
    }

    @Override
    public Tensor siluBackward(Scope s, Tensor dOut, Tensor x) {
        return mapBackward(s, dOut, x, "siluBackward", Elementwise::siluBackward);
    }

    @Override
    public Tensor gelu(Scope s, Tensor x, GeluApproximation approximation) {
        return map(s, x, "gelu", (in, out, n) -> Elementwise.gelu(in, out, n, approximation));
    }

    @Override
    public Tensor geluBackward(Scope s, Tensor dOut, Tensor x, GeluApproximation approximation) {
        return mapBackward(s, dOut, x, "geluBackward",
                (dy, in, dx, n) -> Elementwise.geluBackward(dy, in, dx, n, approximation));
    }

    @Override
    public Tensor quickGelu(Scope s, Tensor x) {
        return map(s, x, "quickGelu", Elementwise::quickGelu);
    }

    @Override
    public Tensor quickGeluBackward(Scope s, Tensor dOut, Tensor x) {
        return mapBackward(s, dOut, x, "quickGeluBackward", Elementwise::quickGeluBackward);
    }

    /** An elementwise kernel {@code out[i] = f(in[i])} over {@code n} values. */
    private interface Map {
        void apply(float[] in, float[] out, int n);
    }

    /** An elementwise backward kernel {@code dx[i] = dy[i] · f'(x[i])}. */
    private interface MapBackward {
        void apply(float[] dy, float[] x, float[] dx, int n);
    }

    private Tensor map(Scope s, Tensor x, String op, Map kernel) {
        float[] d = f(x, op);
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        kernel.apply(d, t.data(), d.length);
        return done(t);
    }

    private Tensor mapBackward(Scope s, Tensor dOut, Tensor x, String op, MapBackward kernel) {
        sameDtype(op, dOut, x);
        sameShape(op, dOut, x);
        CpuTensor t = newFloat(s, x.shape(), x.dtype());
        kernel.apply(f(dOut, op), f(x, op), t.data(), t.data().length);
        return done(t);
    }

    // ---- matrix products -----------------------------------------------------------------------

    @Override
    public Tensor matmul(Scope s, Tensor a, Tensor b, boolean transA, boolean transB) {
        sameDtype("matmul", a, b);
        float[] ad = f(a, "matmul");
        float[] bd = f(b, "matmul");
        require((a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3) && !(a.rank() == 2 && b.rank() == 3),
                "matmul", "operands must be (M, K)·(K, N), (B, M, K)·(B, K, N) or (B, M, K)·(K, N)", a, b);
        int batch = a.rank() == 3 ? a.dim(0) : 1;
        require(b.rank() == 2 || b.dim(0) == batch, "matmul", "batch sizes differ", a, b);
        int m = transA ? a.dim(-1) : a.dim(-2);
        int k = transA ? a.dim(-2) : a.dim(-1);
        int kb = transB ? b.dim(-1) : b.dim(-2);
        int n = transB ? b.dim(-2) : b.dim(-1);
        require(k == kb, "matmul", "inner sizes differ (" + k + " vs " + kb + ")", a, b);
        Shape out = a.rank() == 3 ? Shape.of(batch, m, n) : Shape.of(m, n);
        CpuTensor t = newFloat(s, out, a.dtype());
        float[] c = t.data();
        for (int i = 0; i < batch; i++) {
            int bOff = b.rank() == 3 ? i * k * n : 0;
            Gemm.multiply(par, ad, i * m * k, transA, bd, bOff, transB, c, i * m * n, m, n, k, false);
        }
        return done(t);
    }

    @Override
    public Tensor linear(Scope s, Tensor x, Tensor weight, Tensor bias) {
        sameDtype("linear", x, weight, bias);
        float[] xd = f(x, "linear");
        float[] wd = f(weight, "linear");
        float[] bd = fOrNull(bias, "linear");
        require(x.rank() >= 1 && weight.rank() == 2 && x.dim(-1) == weight.dim(1), "linear",
                "expects x (.., K) and weight (N, K)", x, weight);
        int n = weight.dim(0);
        int k = weight.dim(1);
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == n), "linear", "bias must be (N)", weight, bias);
        int m = (int) (x.numel() / k);
        CpuTensor t = newFloat(s, x.shape().withLast(n), x.dtype());
        float[] y = t.data();
        Gemm.multiply(par, xd, 0, false, wd, 0, true, y, 0, m, n, k, false);
        if (bd != null) {
            for (int r = 0; r < m; r++) {
                for (int j = 0; j < n; j++) {
                    y[r * n + j] += bd[j];
                }
            }
        }
        return done(t);
    }

    // ---- convolution ---------------------------------------------------------------------------

    private Convolution.Geometry geometry(Tensor x, Tensor weight, int stride, int padding, String op) {
        require(x.rank() == 4 && weight.rank() == 4 && x.dim(1) == weight.dim(1) && weight.dim(2) == weight.dim(3),
                op, "expects x (N, C, H, W) and a square weight (O, C, k, k)", x, weight);
        require(stride >= 1 && padding >= 0, op, "stride must be >= 1 and padding >= 0", x);
        Convolution.Geometry g = new Convolution.Geometry(x.dim(0), x.dim(1), x.dim(2), x.dim(3), weight.dim(0),
                weight.dim(2), stride, padding, convColumnBudget);
        require(g.outH() >= 1 && g.outW() >= 1, op, "kernel larger than the padded input", x, weight);
        return g;
    }

    @Override
    public Tensor convolution(Scope s, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        sameDtype("convolution", x, weight, bias);
        Convolution.Geometry g = geometry(x, weight, stride, padding, "convolution");
        require(bias == null || (bias.rank() == 1 && bias.dim(0) == g.o()), "convolution", "bias must be (O)", weight, bias);
        CpuTensor t = newFloat(s, Shape.of(g.n(), g.o(), g.outH(), g.outW()), x.dtype());
        Convolution.forward(par, g, f(x, "convolution"), f(weight, "convolution"), fOrNull(bias, "convolution"), t.data());
        return done(t);
    }

    @Override
    public LayerGrads convolutionBackward(Scope s, Tensor dOut, Tensor x, Tensor weight, int stride, int padding,
                                          OutputMask mask) {
        sameDtype("convolutionBackward", dOut, x, weight);
        Convolution.Geometry g = geometry(x, weight, stride, padding, "convolutionBackward");
        require(dOut.shape().equals(Shape.of(g.n(), g.o(), g.outH(), g.outW())), "convolutionBackward",
                "gradient shape does not match the output", dOut, x, weight);
        CpuTensor dx = mask.input() ? newFloat(s, x.shape(), x.dtype()) : null;
        CpuTensor dw = mask.weight() ? newFloat(s, weight.shape(), x.dtype()) : null;
        CpuTensor db = mask.bias() ? newFloat(s, Shape.of(g.o()), x.dtype()) : null;
        Convolution.backward(par, g, f(dOut, "convolutionBackward"), f(x, "convolutionBackward"),
                f(weight, "convolutionBackward"), dx == null ? null : dx.data(), dw == null ? null : dw.data(),
                db == null ? null : db.data());
        return new LayerGrads(dx == null ? null : done(dx), dw == null ? null : done(dw), db == null ? null : done(db));
    }

    // ---- normalisation -------------------------------------------------------------------------

    @Override
    public NormResult groupNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, int groups, double eps) {
        sameDtype("groupNorm", x, gamma, beta);
        require(x.rank() >= 2 && groups >= 1 && x.dim(1) % groups == 0, "groupNorm",
                "channels must divide into " + groups + " groups", x);
        int c = x.dim(1);
        checkAffine("groupNorm", c, gamma, beta);
        int n = x.dim(0);
        int spatial = (int) x.shape().numel(2, x.rank());
        int rows = n * groups;
        int m = c / groups * spatial;
        CpuTensor y = newFloat(s, x.shape(), x.dtype());
        CpuTensor mean = newFloat(s, Shape.of(n, groups), DType.F32);
        CpuTensor rstd = newFloat(s, Shape.of(n, groups), DType.F32);
        Norms.forward(par, f(x, "groupNorm"), rows, m, fOrNull(gamma, "groupNorm"), fOrNull(beta, "groupNorm"),
                Norms.groupChannels(groups, c, spatial), eps, y.data(), mean.data(), rstd.data());
        return new NormResult(done(y), mean, rstd);
    }

    @Override
    public LayerGrads groupNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, int groups,
                                        OutputMask mask) {
        sameDtype("groupNormBackward", dOut, x);
        sameShape("groupNormBackward", dOut, x);
        int c = x.dim(1);
        int spatial = (int) x.shape().numel(2, x.rank());
        int rows = x.dim(0) * groups;
        int m = c / groups * spatial;
        return normBackward(s, dOut, x, forward, gamma, mask, rows, m, c, Norms.groupChannels(groups, c, spatial),
                "groupNormBackward");
    }

    @Override
    public NormResult layerNorm(Scope s, Tensor x, Tensor gamma, Tensor beta, double eps) {
        sameDtype("layerNorm", x, gamma, beta);
        require(x.rank() >= 1, "layerNorm", "needs at least one dimension", x);
        int c = x.dim(-1);
        checkAffine("layerNorm", c, gamma, beta);
        int rows = (int) (x.numel() / Math.max(1, c));
        CpuTensor y = newFloat(s, x.shape(), x.dtype());
        Shape stats = x.shape().withLast(1);
        CpuTensor mean = newFloat(s, stats, DType.F32);
        CpuTensor rstd = newFloat(s, stats, DType.F32);
        Norms.forward(par, f(x, "layerNorm"), rows, c, fOrNull(gamma, "layerNorm"), fOrNull(beta, "layerNorm"),
                Norms.lastDimChannels(), eps, y.data(), mean.data(), rstd.data());
        return new NormResult(done(y), mean, rstd);
    }

    @Override
    public LayerGrads layerNormBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma,
                                        OutputMask mask) {
        sameDtype("layerNormBackward", dOut, x);
        sameShape("layerNormBackward", dOut, x);
        int c = x.dim(-1);
        int rows = (int) (x.numel() / Math.max(1, c));
        return normBackward(s, dOut, x, forward, gamma, mask, rows, c, c, Norms.lastDimChannels(), "layerNormBackward");
    }

    private LayerGrads normBackward(Scope s, Tensor dOut, Tensor x, NormResult forward, Tensor gamma, OutputMask mask,
                                    int rows, int m, int channels, Norms.ChannelMap map, String op) {
        float[] dy = f(dOut, op);
        float[] xd = f(x, op);
        float[] mean = f(forward.mean(), op);
        float[] rstd = f(forward.rstd(), op);
        CpuTensor dx = mask.input() ? newFloat(s, x.shape(), x.dtype()) : null;
        CpuTensor dg = mask.weight() ? newFloat(s, Shape.of(channels), x.dtype()) : null;
        CpuTensor dbeta = mask.bias() ? newFloat(s, Shape.of(channels), x.dtype()) : null;
        if (dx != null) {
            Norms.backwardInput(par, dy, xd, rows, m, mean, rstd, fOrNull(gamma, op), map, dx.data());
        }
        if (dg != null || dbeta != null) {
            Norms.backwardParams(dy, xd, rows, m, mean, rstd, map, channels, dg == null ? null : dg.data(),
                    dbeta == null ? null : dbeta.data());
        }
        return new LayerGrads(dx == null ? null : done(dx), dg == null ? null : done(dg), dbeta == null ? null : done(dbeta));
    }

    private static void checkAffine(String op, int c, Tensor gamma, Tensor beta) {
        require(gamma == null || (gamma.rank() == 1 && gamma.dim(0) == c), op, "gamma must be (" + c + ")", gamma);
        require(beta == null || (beta.rank() == 1 && beta.dim(0) == c), op, "beta must be (" + c + ")", beta);
    }

    // ---- attention -----------------------------------------------------------------------------

    private static Attention.Dims attentionDims(Tensor q, Tensor k, Tensor v, String op) {
        require(q.rank() == 4 && k.rank() == 4 && v.rank() == 4, op, "expects (N, heads, T, D) tensors", q, k, v);
        require(q.dim(0) == k.dim(0) && q.dim(1) == k.dim(1) && k.dim(0) == v.dim(0) && k.dim(1) == v.dim(1)
                && q.dim(3) == k.dim(3) && k.dim(2) == v.dim(2), op, "shapes do not match", q, k, v);
        return new Attention.Dims(q.dim(0) * q.dim(1), q.dim(2), k.dim(2), q.dim(3), v.dim(3));
    }

    @Override
    public AttentionResult attention(Scope s, Tensor q, Tensor k, Tensor v, boolean causal, double scale) {
        sameDtype("attention", q, k, v);
        Attention.Dims m = attentionDims(q, k, v, "attention");
        require(!causal || m.tq() <= m.tk(), "attention", "causal attention needs Tq <= Tk", q, k);
        CpuTensor out = newFloat(s, Shape.of(q.dim(0), q.dim(1), m.tq(), m.dv()), q.dtype());
        CpuTensor lse = newFloat(s, Shape.of(q.dim(0), q.dim(1), m.tq()), DType.F32);
        Attention.forward(par, m, f(q, "attention"), f(k, "attention"), f(v, "attention"), causal, (float) scale,
                out.data(), lse.data());
        return new AttentionResult(done(out), lse);
    }

    @Override
    public AttentionGrads attentionBackward(Scope s, Tensor dOut, Tensor q, Tensor k, Tensor v, AttentionResult forward,
                                            boolean causal, double scale) {
        sameDtype("attentionBackward", dOut, q, k, v);
        Attention.Dims m = attentionDims(q, k, v, "attentionBackward");
        sameShape("attentionBackward", dOut, forward.out());
        CpuTensor dq = newFloat(s, q.shape(), q.dtype());
        CpuTensor dk = newFloat(s, k.shape(), k.dtype());
        CpuTensor dv = newFloat(s, v.shape(), v.dtype());
        Attention.backward(par, m, f(dOut, "attentionBackward"), f(q, "attentionBackward"), f(k, "attentionBackward"),
                f(v, "attentionBackward"), f(forward.out(), "attentionBackward"), f(forward.logSumExp(), "attentionBackward"),
                causal, (float) scale, dq.data(), dk.data(), dv.data());
        return new AttentionGrads(done(dq), done(dk), done(dv));
    }
    // ---- reductions and loss -------------------------------------------------------------------

    private Tensor reduce(Scope s, Tensor x, int[] dims, boolean keepDim, boolean mean, String op) {
        float[] d = f(x, op);
        Shape in = x.shape();
        boolean[] reduced = new boolean[in.rank()];
        if (dims.length == 0) {
            Arrays.fill(reduced, true);
        }
        for (int dim : dims) {
            int a = in.axis(dim);
            require(!reduced[a], op, "dimension " + dim + " given twice", x);
            reduced[a] = true;
        }
        long count = 1;
        int kept = 0;
        int[] keepDims = new int[in.rank()];
        int[] dropDims = new int[in.rank()];
        for (int i = 0; i < in.rank(); i++) {
            if (reduced[i]) {
                count *= in.dim(i);
                keepDims[i] = 1;
            } else {
                keepDims[i] = in.dim(i);
                dropDims[kept++] = in.dim(i);
            }
        }
        Shape out = keepDim ? Shape.of(keepDims) : Shape.of(Arrays.copyOf(dropDims, kept));
        CpuTensor t = newFloat(s, out, x.dtype());
        Reductions.sum(d, in, reduced, t.data(), mean ? 1.0 / count : 1.0);
        return done(t);
    }

    @Override
    public Tensor sum(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim, false, "sum");
    }

    @Override
    public Tensor mean(Scope s, Tensor x, int[] dims, boolean keepDim) {
        return reduce(s, x, dims, keepDim, true, "mean");
    }

    @Override
    public Tensor mseLoss(Scope s, Tensor pred, Tensor target) {
        sameDtype("mseLoss", pred, target);
        sameShape("mseLoss", pred, target);
        CpuTensor t = newFloat(s, Shape.scalar(), pred.dtype());
        t.data()[0] = (float) Reductions.mse(f(pred, "mseLoss"), f(target, "mseLoss"), (int) pred.numel());
        return done(t);
    }

    @Override
    public Tensor mseLossBackward(Scope s, Tensor dLoss, Tensor pred, Tensor target) {
        sameDtype("mseLossBackward", dLoss, pred, target);
        sameShape("mseLossBackward", pred, target);
        require(dLoss.numel() == 1, "mseLossBackward", "loss gradient must be a single value", dLoss);
        CpuTensor t = newFloat(s, pred.shape(), pred.dtype());
        Reductions.mseBackward(f(dLoss, "mseLossBackward")[0], f(pred, "mseLossBackward"), f(target, "mseLossBackward"),
                t.data(), (int) pred.numel());
        return done(t);
    }

    // ---- embeddings ----------------------------------------------------------------------------

    @Override
    public Tensor embedding(Scope s, Tensor weight, Tensor ids) {
        float[] w = f(weight, "embedding");
        long[] id = cpu(ids, "embedding").longs();
        require(weight.rank() == 2, "embedding", "weight must be (V, D)", weight);
        int d = weight.dim(1);
        int[] outDims = Arrays.copyOf(ids.shape().dims(), ids.rank() + 1);
        outDims[ids.rank()] = d;
        CpuTensor t = newFloat(s, Shape.of(outDims), weight.dtype());
        Reductions.embedding(w, weight.dim(0), d, id, t.data());
        return t;
    }

    @Override
    public Tensor embeddingBackward(Scope s, Tensor dOut, Tensor ids, int numEmbeddings) {
        float[] g = f(dOut, "embeddingBackward");
        long[] id = cpu(ids, "embeddingBackward").longs();
        int d = dOut.dim(-1);
        require(dOut.numel() == (long) id.length * d, "embeddingBackward", "gradient does not match ids", dOut, ids);
        CpuTensor t = newFloat(s, Shape.of(numEmbeddings, d), dOut.dtype());
        Reductions.embeddingBackward(g, id, numEmbeddings, d, t.data());
        return done(t);
    }

    @Override
    public Tensor sinusoidalEmbedding(Scope s, Tensor values, int dim) {
        CpuTensor c = cpu(values, "sinusoidalEmbedding");
        require(values.rank() == 1 && dim > 0 && dim % 2 == 0, "sinusoidalEmbedding",
                "expects values (N) and an even dim, got dim " + dim, values);
        double[] v = new double[(int) values.numel()];
        if (values.dtype() == DType.I64) {
            long[] l = c.longs();
            for (int i = 0; i < v.length; i++) {
                v[i] = l[i];
            }
        } else {
            float[] fl = c.data();
            for (int i = 0; i < v.length; i++) {
                v[i] = fl[i];
            }
        }
        CpuTensor t = newFloat(s, Shape.of(v.length, dim), DType.F32);
        Reductions.sinusoidal(v, dim, t.data());
        return t;
    }
}
