package tenmin.engine.api;

import java.lang.reflect.Method;
import java.util.Map;
import java.util.TreeMap;

import tenmin.engine.api.Backend.OutputMask;

/**
 * Counts what a piece of model code asks of a backend: calls per op, host transfers (each a sync point on a
 * GPU), and the floating-point operations of the matrix-unit ops, counted from the argument shapes with the
 * formulas below. Wrap a backend ({@link #wrap}), run the code on scopes of the wrapped backend, read a
 * {@link #snapshot()}; {@link #reset()} between phases.
 *
 * <p>FLOPs (a multiply-add is 2), only for ops that run on the matrix units; elementwise ops, norms and
 * copies are memory-bound and not counted (the usual convention of model FLOP utilisation):
 * <pre>
 * matmul / linear           2·B·M·N·K                                    (linearGeglu: its linear's)
 * convolution               2·N·O·Ho·Wo·C·kH·kW                         (= per output element, 2·C·kH·kW)
 * convolutionBackward       the forward's count for dx and again for dWeight, as the mask asks
 * attention                 2·N·h·Tq·Tk·(D + Dv)                         (QKᵀ and P·V; causal: half)
 * attentionBackward         2·N·h·Tq·Tk·(3D + 2Dv)                       (QKᵀ again, dV, dP, dQ, dK; causal: half)
 * </pre>
 * Gradient checkpointing is counted as it runs: a recomputed block issues its forward ops again.
 *
 * <p>Not thread-safe, like the engine.
 */
public final class OpStats {
    private final Map<String, Long> calls = new TreeMap<>();
    private long ops;
    private long uploads;
    private long downloads;
    private long synchronizes;
    private double flops;

    /**
     * What was counted since the last reset.
     *
     * @param ops          backend calls that take a scope, a tensor or a list of tensors first (every op, view,
     *                     in-place update and bulk transfer)
     * @param uploads      host-to-device copies ({@code fromHost*}): sync points on a GPU
     * @param downloads    device-to-host copies ({@code toHost*}): sync points that wait for the device
     * @param synchronizes explicit {@link Backend#synchronize()} calls
     * @param flops        floating-point operations of the matrix-unit ops (see the class comment)
     * @param calls        calls per op name
     */
    public record Snapshot(long ops, long uploads, long downloads, long synchronizes, double flops,
                           Map<String, Long> calls) {
        /** Host transfers and explicit synchronizations: the points where a GPU queue drains. */
        public long syncPoints() {
            return uploads + downloads + synchronizes;
        }
    }

    /** A backend that counts every call into this object and forwards it to {@code backend}. */
    public Backend wrap(Backend backend) {
        return BackendProxies.proxy("counted " + backend, (method, args) -> {
            Object result = BackendProxies.forward(backend, method, args);
            count(method, args, result);
            return result;
        });
    }

    /** The counts since creation or the last {@link #reset()}. */
    public Snapshot snapshot() {
        return new Snapshot(ops, uploads, downloads, synchronizes, flops, Map.copyOf(calls));
    }

    /** Zeroes every count. */
    public void reset() {
        calls.clear();
        ops = 0;
        uploads = 0;
        downloads = 0;
        synchronizes = 0;
        flops = 0;
    }

    private void count(Method method, Object[] args, Object result) {
        String name = method.getName();
        switch (name) {
            case "fromHost", "fromHostBytes" -> uploads++;
            case "toHost", "toHostLongs" -> downloads++;
            case "synchronize" -> synchronizes++;
            default -> {
            }
        }
        if (!BackendProxies.isOp(args)) {
            return;
        }
        ops++;
        calls.merge(name, 1L, Long::sum);
        flops += flopsOf(name, args, result);
    }

    /** FLOPs of one call by the formulas of the class comment; 0 for ops that do not use the matrix units. */
    static double flopsOf(String op, Object[] args, Object result) {
        return switch (op) {
            case "matmul" -> {
                Tensor a = (Tensor) args[1];
                Tensor b = (Tensor) args[2];
                boolean transA = (Boolean) args[3];
                boolean transB = (Boolean) args[4];
                double batch = a.rank() == 3 ? a.dim(0) : 1;
                double m = transA ? a.dim(-1) : a.dim(-2);
                double k = transA ? a.dim(-2) : a.dim(-1);
                double n = transB ? b.dim(-2) : b.dim(-1);
                yield 2 * batch * m * n * k;
            }
            case "linear", "linearGeglu" -> {   // linearGeglu: the same product (both halves), then elementwise
                Tensor x = (Tensor) args[1];
                Tensor w = (Tensor) args[2];
                double rows = (double) x.numel() / w.dim(1);
                yield 2 * rows * w.dim(0) * w.dim(1);
            }
            case "convolution" -> convFlops((Tensor) result, (Tensor) args[2]);
            case "convolutionBackward" -> {
                OutputMask mask = (OutputMask) args[6];
                double f = convFlops((Tensor) args[1], (Tensor) args[3]);
                yield (mask.input() ? f : 0) + (mask.weight() ? f : 0);
            }
            case "attention" -> attentionFlops((Tensor) args[1], (Tensor) args[2], (Tensor) args[3], (Boolean) args[4], 1, 1);
            case "loraAdd" -> {
                Tensor x = (Tensor) args[2];
                Tensor down = (Tensor) args[3];
                Tensor up = (Tensor) args[4];
                double rows = (double) x.numel() / x.dim(-1);
                yield 2 * rows * down.dim(0) * (x.dim(-1) + up.dim(0));
            }
            case "loraMerge" -> {
                Tensor w = (Tensor) args[1];
                Tensor down = (Tensor) args[2];
                yield 2.0 * w.numel() * down.dim(0);
            }
            case "loraAddBackward" -> {
                Tensor x = (Tensor) args[2];
                Tensor down = (Tensor) args[4];
                Tensor up = (Tensor) args[5];
                boolean needX = (Boolean) args[7];
                boolean needDown = (Boolean) args[8];
                boolean needUp = (Boolean) args[9];
                double rows = (double) x.numel() / x.dim(-1);
                double throughUp = 2 * rows * up.dim(0) * down.dim(0);     // one product with up: (M, N) x (N, r)
                double throughDown = 2 * rows * x.dim(-1) * down.dim(0);   // one product with down or x: (M, r) x (r, K)
                yield throughUp + (needUp ? throughUp : 0) + (needDown ? throughDown : 0) + (needX ? throughDown : 0);
            }
            case "linearBackward" -> {
                Tensor dy = (Tensor) args[1];
                Tensor w = (Tensor) args[3];
                OutputMask mask = (OutputMask) args[4];
                double f = 2.0 * dy.numel() * w.dim(1);
                yield (mask.input() ? f : 0) + (mask.weight() ? f : 0);
            }
            case "attentionBackward" -> attentionFlops((Tensor) args[2], (Tensor) args[3], (Tensor) args[4],
                    (Boolean) args[6], 3, 2);
            // (N, T, h·D) tensors: the pairs per head times h and the head width D = C / h cancel
            case "attentionHeads" -> headsFlops((Tensor) args[1], (Tensor) args[2], (Tensor) args[3], (Boolean) args[5],
                    1, 1);
            case "attentionHeadsBackward" -> headsFlops((Tensor) args[2], (Tensor) args[3], (Tensor) args[4],
                    (Boolean) args[7], 3, 2);
            default -> 0;
        };
    }

    /** 2 · (elements of the output) · C·kH·kW. */
    private static double convFlops(Tensor out, Tensor weight) {
        return 2.0 * out.numel() * weight.dim(1) * weight.dim(2) * weight.dim(3);
    }

    /** 2·N·h·Tq·Tk·(qk·D + pv·Dv), halved when causal. */
    private static double attentionFlops(Tensor q, Tensor k, Tensor v, boolean causal, int qk, int pv) {
        double pairs = (double) q.dim(0) * q.dim(1) * q.dim(2) * k.dim(2);
        double f = 2 * pairs * (qk * q.dim(3) + pv * v.dim(3));
        return causal ? f / 2 : f;
    }

    /** {@link #attentionFlops} for unsplit heads: 2·N·Tq·Tk·(qk·C + pv·Cv). */
    private static double headsFlops(Tensor q, Tensor k, Tensor v, boolean causal, int qk, int pv) {
        double pairs = (double) q.dim(0) * q.dim(1) * k.dim(1);
        double f = 2 * pairs * (qk * q.dim(2) + pv * v.dim(2));
        return causal ? f / 2 : f;
    }
}
