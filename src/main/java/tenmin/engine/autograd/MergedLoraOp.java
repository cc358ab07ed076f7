package tenmin.engine.autograd;

import tenmin.core.Switch;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.LoraGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * A layer with a LoRA on it, run with the LoRA folded into the weight: {@code layer(x; W + scale · up · down, b)}.
 * Linear: x (.., K), weight (N, K), down (r, K), up (N, r). Convolution: x (B, C, H, W), weight (O, C, k, k), down
 * (r, C, k, k) with the layer's stride and padding, up (O, r, 1, 1). The values of the layer plus its branch up to
 * the rounding of the merged weight, with less memory traffic where the rows (pixels) outnumber the weight's
 * ({@link #pays}): no branch output written and added per row, and in the backward one product for dx instead of the
 * layer's, the branch's and their sum. The LoRA's own gradients are the branch's (through the hidden
 * {@code down(x)}), or, for a convolution where that takes fewer FLOPs ({@link #projects}: the recipe's 128² level,
 * 320 outputs against a rank of 256), projections of the layer's full weight gradient dW' (dUp = scale · dW'·downᵀ,
 * dDown = scale · upᵀ·dW', flattened over C·k·k), as autograd through the merged weight gives them, without the
 * hidden. The merged weight is made again in the backward rather than kept. Saves: x, weight, bias, down, up and,
 * unless projected, the hidden {@code down(x)} (.., r) or (B, r, Ho, Wo), which dUp needs.
 */
final class MergedLoraOp extends Op {
    private final Tensor x;
    private final Tensor weight;
    private final Tensor bias;
    private final Tensor down;
    private final Tensor up;
    private final Tensor hidden;
    private final double scale;
    private final boolean conv;
    private final int stride;
    private final int padding;

    private MergedLoraOp(Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, Tensor hidden, double scale,
                         boolean conv, int stride, int padding) {
        this.x = x;
        this.weight = weight;
        this.bias = bias;
        this.down = down;
        this.up = up;
        this.hidden = hidden;
        this.scale = scale;
        this.conv = conv;
        this.stride = stride;
        this.padding = padding;
    }

    /**
     * True when merging moves less memory than the branch, counted in values: per call the branch writes its output
     * and adds it to the layer's (2·M·N for M rows or input pixels and N outputs) and in the backward writes its dx
     * and adds it to the layer's (4·M·K for K inputs per row: a convolution's C·k·k, which overcounts in the branch's
     * favour), while the merge reads and writes the weight twice (4·N·K; forward and backward).
     */
    static boolean pays(Tensor x, Tensor weight) {
        double n = weight.dim(0);
        double k = (double) weight.numel() / weight.dim(0);
        double m = weight.rank() == 2 ? (double) x.numel() / x.dim(-1) : (double) x.numel() / x.dim(1);
        return m * (2 * n + 4 * k) > 4 * n * k;
    }

    /**
     * {@link #projects}' switch: on unless the property or {@code TENMIN_LORA_PROJECT} is 0; the property
     * {@code always} (checks on a device) projects every merged convolution's gradients, wherever the rule says.
     */
    static final String PROJECT_PROPERTY = "tenmin.loraProject";
    private static final Switch PROJECT = new Switch(PROJECT_PROPERTY, "TENMIN_LORA_PROJECT");

    /**
     * True for a convolution whose LoRA gradients take fewer FLOPs as projections of the full weight gradient (per
     * output pixel 2·O·C·k², the weight gradient) than through the branch (2·r·C·k² for the hidden down(x) in the
     * forward and again for dDown, 2·O·r each for dUp and the hidden's gradient): O·C·k² < 2·r·C·k² + 2·O·r, with O
     * outputs and rank r. The recipe's 3x3 convolutions with 320 outputs (rank 256) project; with 640 or 1280 they
     * do not.
     */
    static boolean projects(Tensor weight, Tensor down) {
        if (weight.rank() != 4 || !PROJECT.on()) {
            return false;
        }
        if ("always".equals(System.getProperty(PROJECT_PROPERTY))) {
            return true;
        }
        double o = weight.dim(0);
        double ck = (double) weight.numel() / weight.dim(0);
        double r = down.dim(0);
        return o * ck < 2 * r * ck + 2 * o * r;
    }

    static Tensor linear(Functional f, Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale) {
        return forward(f, x, weight, bias, down, up, scale, false, 1, 0);
    }

    static Tensor conv2d(Functional f, Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale,
                         int stride, int padding) {
        return forward(f, x, weight, bias, down, up, scale, true, stride, padding);
    }

    private static Tensor forward(Functional f, Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up,
                                  double scale, boolean conv, int stride, int padding) {
        Backend b = f.backend();
        Tensor merged = b.loraMerge(f.scope(), weight, down, up, scale);
        Tensor y;
        try {
            y = conv ? b.convolution(f.scope(), x, merged, bias, stride, padding) : b.linear(f.scope(), x, merged, bias);
        } finally {
            merged.close();
        }
        if (f.records(x, weight, bias, down, up)) {
            Tensor hidden = conv && projects(weight, down) ? null
                    : conv ? b.convolution(f.scope(), x, down, null, stride, padding) : b.linear(f.scope(), x, down, null);
            f.record(new MergedLoraOp(x, weight, bias, down, up, hidden, scale, conv, stride, padding), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, weight, down, up, hidden};
    }

    @Override
    String name() {
        return conv ? "mergedLoraConv2d" : "mergedLoraLinear";
    }

    // W' = W + scale · up · down. The layer: dx = its input gradient with W'; dW = its weight gradient (dW' = dW);
    // db = Σ dy. The branch z = scale · up(h), h = down(x): dUp = scale · (weight gradient of up at input h),
    // dh = scale · (input gradient through up), dDown = weight gradient of down at input x from dh; the scale is
    // applied to the small weight gradients instead of dy (linear: loraAdd's backward, which does the same).
    @Override
    void backward(Backprop bp) {
        Tensor dOut = bp.grad(0);
        Backend b = bp.backend();
        if (conv && hidden == null) {
            backwardProjected(bp, dOut, b);
            return;
        }
        if (bp.needs(x) || bp.needs(weight) || bp.needs(bias)) {
            Tensor merged = bp.needs(x) ? b.loraMerge(bp.scratch(), weight, down, up, scale) : weight;
            OutputMask mask = bp.mask(x, weight, bias);
            LayerGrads g = conv ? b.convolutionBackward(bp.scratch(), dOut, x, merged, stride, padding, mask)
                    : b.linearBackward(bp.scratch(), dOut, x, merged, mask);
            bp.accumulate(g, x, weight, bias);
        }
        if (!bp.needs(down) && !bp.needs(up)) {
            return;
        }
        if (!conv) {
            LoraGrads g = b.loraAddBackward(bp.scratch(), dOut, x, hidden, down, up, scale, false, bp.needs(down),
                    bp.needs(up));
            bp.accumulate(down, g.dDown());
            bp.accumulate(up, g.dUp());
            return;
        }
        LayerGrads throughUp = b.convolutionBackward(bp.scratch(), dOut, hidden, up, 1, 0,
                new OutputMask(bp.needs(down), bp.needs(up), false));
        if (bp.needs(up)) {
            bp.accumulate(up, b.affine(bp.scratch(), throughUp.dWeight(), scale, 0.0));
        }
        if (bp.needs(down)) {
            LayerGrads throughDown = b.convolutionBackward(bp.scratch(), throughUp.dx(), x, down, stride, padding,
                    new OutputMask(false, true, false));
            bp.accumulate(down, b.affine(bp.scratch(), throughDown.dWeight(), scale, 0.0));
        }
    }

    // dW' is the layer's weight gradient (the same for W and for the merged weight); W' = W + scale · up · down
    // flattened to (O, r)·(r, C·k·k) gives dUp = scale · dW'·downᵀ and dDown = scale · upᵀ·dW'.
    private void backwardProjected(Backprop bp, Tensor dOut, Backend b) {
        boolean lora = bp.needs(down) || bp.needs(up);
        Tensor merged = bp.needs(x) ? b.loraMerge(bp.scratch(), weight, down, up, scale) : weight;
        LayerGrads g = b.convolutionBackward(bp.scratch(), dOut, x, merged, stride, padding,
                new OutputMask(bp.needs(x), lora || bp.needs(weight), bp.needs(bias)));
        bp.accumulate(g, x, weight, bias);
        if (!lora) {
            return;
        }
        int o = weight.dim(0);
        int r = down.dim(0);
        int ck = (int) (weight.numel() / o);
        Tensor dw = b.reshape(bp.scratch(), g.dWeight(), Shape.of(o, ck));
        if (bp.needs(up)) {
            Tensor d2 = b.reshape(bp.scratch(), down, Shape.of(r, ck));
            Tensor dUp = b.affine(bp.scratch(), b.matmul(bp.scratch(), dw, d2, false, true), scale, 0.0);
            bp.accumulate(up, b.reshape(bp.scratch(), dUp, up.shape()));
        }
        if (bp.needs(down)) {
            Tensor u2 = b.reshape(bp.scratch(), up, Shape.of(o, r));
            Tensor dDown = b.affine(bp.scratch(), b.matmul(bp.scratch(), u2, dw, true, false), scale, 0.0);
            bp.accumulate(down, b.reshape(bp.scratch(), dDown, down.shape()));
        }
    }
}
