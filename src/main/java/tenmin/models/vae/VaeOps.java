package tenmin.models.vae;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.UnaryOperator;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.Conv2d;

/**
 * Memory-bounded inference helpers of the VAE, which runs at image resolution (a 1024² image makes
 * 128-channel feature maps of 512 MB each in fp32):
 * <ul>
 *   <li>{@link #then}: apply a step and free its input at once (inference keeps no activations);</li>
 *   <li>{@link #scoped}: run a block in a child scope so its temporaries die with it;</li>
 *   <li>{@link #conv}/{@link #upsampleConv}: k×k convolutions in bands of output rows, so the working
 *       buffer of one convolution call (for the CPU backend: its im2col matrix, C·k²·Ho·Wo floats — 2.4·10⁹
 *       for the decoder's 256-channel 3x3 conv at 1024², more than a Java array holds) stays below
 *       {@code maxColumnElements}. Each band reads its input rows plus the kernel's halo, so the result
 *       is the same convolution (the same sums in the same order per output element).</li>
 * </ul>
 * Legend: N batch, C channels, H/W rows/columns of the convolution's (padded) input, Ho/Wo of its output.
 */
final class VaeOps {
    private final long maxColumnElements;

    VaeOps(long maxColumnElements) {
        if (maxColumnElements <= 0) {
            throw new IllegalArgumentException("convolution column budget must be positive: " + maxColumnElements);
        }
        this.maxColumnElements = maxColumnElements;
    }

    /** {@code op(t)}, then closes {@code t} (unless {@code op} returned it). */
    static Tensor then(Tensor t, UnaryOperator<Tensor> op) {
        Tensor r = op.apply(t);
        if (r != t) {
            t.close();
        }
        return r;
    }

    /** Runs {@code block} in a child scope of {@code f}'s and moves only its result out. */
    static Tensor scoped(Functional f, String name, Function<Functional, Tensor> block) {
        try (Scope s = f.scope().child(name)) {
            Tensor out = block.apply(Functional.inference(s));
            return out.scope() == s ? s.keep(out) : out;
        }
    }

    /** {@code conv} with its own (symmetric) padding: x (N, C, H, W) → (N, O, Ho, Wo). */
    Tensor conv(Functional f, Conv2d conv, Tensor x) {
        int p = conv.padding();
        return banded(f, conv, x.dim(2), x.dim(3), p, p, p, p, rowsOf(x));
    }

    /**
     * {@code conv} (which must have padding 0) after zero padding x by the given amounts — the VAE's
     * Downsample pads right and bottom by 1 before its 3x3 stride-2 convolution.
     */
    Tensor conv(Functional f, Conv2d conv, Tensor x, int left, int right, int top, int bottom) {
        if (conv.padding() != 0) {
            throw new IllegalArgumentException("explicit padding with a padded convolution " + conv.path());
        }
        return banded(f, conv, x.dim(2), x.dim(3), left, right, top, bottom, rowsOf(x));
    }

    /**
     * {@code conv(upsampleNearest2x(x))} without materialising the whole upsampled map: each band
     * upsamples only the input rows it needs. x (N, C, H, W) → (N, O, 2H, 2W) for a 3x3 pad-1 conv.
     */
    Tensor upsampleConv(Functional f, Conv2d conv, Tensor x) {
        int p = conv.padding();
        return banded(f, conv, 2 * x.dim(2), 2 * x.dim(3), p, p, p, p, (g, r0, r1) -> {
            int i0 = r0 / 2;                       // input rows covering upsampled rows [r0, r1)
            int i1 = (r1 + 1) / 2;
            Tensor up = g.upsampleNearest2x(rowsOf(x).get(g, i0, i1));       // rows [2·i0, 2·i1)
            return r0 == 2 * i0 && r1 == 2 * i1 ? up : g.narrow(up, 2, r0 - 2 * i0, r1 - r0);
        });
    }

    /** Rows [r0, r1) of a convolution's unpadded input, made in {@code g}'s scope. */
    @FunctionalInterface
    private interface Rows {
        Tensor get(Functional g, int r0, int r1);
    }

    /** Rows of x itself (no copy when all rows are asked for). */
    private static Rows rowsOf(Tensor x) {
        return (g, r0, r1) -> r0 == 0 && r1 == x.dim(2) ? x : g.narrow(x, 2, r0, r1 - r0);
    }

    /**
     * The convolution of an (h × w) input given by {@code rows}, zero padded by (left, right, top, bottom),
     * computed in bands of output rows whose working buffer fits the budget.
     */
    private Tensor banded(Functional f, Conv2d conv, int h, int w, int left, int right, int top, int bottom,
                          Rows rows) {
        int k = conv.kernel();
        int s = conv.stride();
        int outH = (h + top + bottom - k) / s + 1;
        int outW = (w + left + right - k) / s + 1;
        long perRow = (long) conv.inFeatures() * k * k * outW;     // im2col elements of one output row
        int bandRows = (int) Math.max(1, Math.min(outH, maxColumnElements / perRow));
        boolean symmetric = left == right && right == top && top == bottom;
        if (bandRows >= outH && symmetric) {
            return scoped(f, "conv " + conv.path(), g -> g.conv2d(rows.get(g, 0, h), conv.weight(), conv.bias(), s, left));
        }
        List<Tensor> bands = new ArrayList<>();
        try (Scope parts = f.scope().child("conv bands " + conv.path())) {
            Functional pf = Functional.inference(parts);
            for (int o0 = 0; o0 < outH; o0 += bandRows) {
                int o1 = Math.min(outH, o0 + bandRows);
                int first = o0 * s - top;                      // input row of the band's first tap (may be < 0)
                int end = (o1 - 1) * s + k - top;              // one past the last tap (may be > h)
                int r0 = Math.max(0, first);
                int r1 = Math.min(h, end);
                bands.add(scoped(pf, "band " + o0, g -> {
                    Tensor in = rows.get(g, r0, r1);
                    if (left != 0 || right != 0 || r0 != first || r1 != end) {
                        in = g.pad2d(in, left, right, r0 - first, end - r1);
                    }
                    return g.conv2d(in, conv.weight(), conv.bias(), s, 0);   // (N, O, o1 - o0, Wo)
                }));
            }
            return parts.keep(bands.size() == 1 ? bands.get(0) : pf.cat(bands, 2));
        }
    }
}
