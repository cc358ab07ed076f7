package tenmin.engine.autograd;

import java.util.List;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.GeluApproximation;
import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.LoraGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/**
 * GEGLU after a linear layer with a LoRA folded into its weight (sgm's {@code FeedForward}: {@code ff.net.0.proj}
 * and its GEGLU): {@code a · gelu(g)} with {@code [a, g] = x · (W + scale · up · down)ᵀ + b} split in two halves of
 * H outputs. x (.., K), weight (2H, K), bias (2H) or null, down (r, K), up (2H, r) → (.., H).
 *
 * <p>The same values as {@link MergedLoraOp}'s layer followed by the GEGLU op, up to rounding, but the value a and the
 * gate g are two products on the merged weight's row blocks, so that they are contiguous tensors of their own: GELU,
 * the product and their backward then run ATen's vectorised kernels, where on the halves of one (.., 2H) result
 * they take the strided path (the GEGLU of a training micro-batch: 20 ms forward and 48 ms backward on an H100 in the
 * ninth session, two to three times what its bytes take). The backward makes dx from the two halves' gradients with
 * the merged weight's row blocks, and the LoRA's gradients from each half's (up's row blocks; down's two parts
 * summed). Saves: x, a, g, the hidden {@code x · downᵀ}, and weight, down and up; a and g take the place of the
 * projection the unfused form keeps for the GEGLU's backward, and are freed once this backward ran.
 */
final class MergedLoraGegluOp extends Op {
    private final Tensor x;
    private final Tensor weight;
    private final Tensor bias;
    private final Tensor down;
    private final Tensor up;
    private final Tensor hidden;
    private final Tensor a;
    private final Tensor g;
    private final double scale;

    private MergedLoraGegluOp(Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, Tensor hidden, Tensor a,
                              Tensor g, double scale) {
        this.x = x;
        this.weight = weight;
        this.bias = bias;
        this.down = down;
        this.up = up;
        this.hidden = hidden;
        this.a = a;
        this.g = g;
        this.scale = scale;
    }

    static Tensor forward(Functional f, Tensor x, Tensor weight, Tensor bias, Tensor down, Tensor up, double scale) {
        Backend b = f.backend();
        Scope s = f.scope();
        if (weight.rank() != 2 || weight.dim(0) % 2 != 0) {
            throw new IllegalArgumentException("loraLinearGeglu: weight " + weight.describe() + " must be (2H, K)");
        }
        int h = weight.dim(0) / 2;
        Tensor[] halves = new Tensor[2];
        try (Scope tmp = s.child("loraLinearGeglu")) {
            Tensor merged = b.loraMerge(tmp, weight, down, up, scale);
            for (int i = 0; i < 2; i++) {
                Tensor w = b.narrow(tmp, merged, 0, i * h, h);
                Tensor bi = bias == null ? null : b.narrow(tmp, bias, 0, i * h, h);
                halves[i] = b.linear(s, x, w, bi);
            }
        }
        Tensor gate = halves[1];
        Tensor y;
        try (Scope tmp = s.child("loraLinearGeglu")) {
            y = b.mul(s, halves[0], b.gelu(tmp, gate, GeluApproximation.NONE));
        }
        if (f.records(x, weight, bias, down, up)) {
            Tensor hidden = b.linear(s, x, down, null);
            f.record(new MergedLoraGegluOp(x, weight, bias, down, up, hidden, halves[0], gate, scale), y);
            f.release(hidden, halves[0], gate);               // closed once this op's backward has read them
        } else {
            halves[0].close();
            gate.close();
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, weight, down, up, hidden, a, g};
    }

    @Override
    String name() {
        return "mergedLoraLinearGeglu";
    }

    // y = a · gelu(g): da = dy · gelu(g), dg = gelu'(g) · dy · a. Then each half i is a layer with the LoRA merged in
    // (MergedLoraOp's backward) on the rows [i·H, (i+1)·H) of weight, bias and up, with down shared: dx and dDown are
    // the sums of the halves', dWeight, dBias and dUp their row blocks side by side.
    @Override
    void backward(Backprop bp) {
        Tensor dOut = bp.grad(0);
        Backend b = bp.backend();
        Scope s = bp.scratch();
        int h = a.dim(-1);
        Tensor[] d = new Tensor[2];
        d[0] = b.mul(s, dOut, b.gelu(s, g, GeluApproximation.NONE));
        d[1] = b.geluBackward(s, b.mul(s, dOut, a), g, GeluApproximation.NONE);
        if (bp.needs(x) || bp.needs(weight) || bp.needs(bias)) {
            Tensor merged = bp.needs(x) ? b.loraMerge(s, weight, down, up, scale) : weight;
            OutputMask mask = bp.mask(x, weight, bias);
            LayerGrads[] parts = new LayerGrads[2];
            for (int i = 0; i < 2; i++) {
                parts[i] = b.linearBackward(s, d[i], x, b.narrow(s, merged, 0, i * h, h), mask);
                bp.accumulate(x, parts[i].dx());
            }
            if (mask.weight()) {
                bp.accumulate(weight, b.cat(s, List.of(parts[0].dWeight(), parts[1].dWeight()), 0));
            }
            if (mask.bias()) {
                bp.accumulate(bias, b.cat(s, List.of(parts[0].dBias(), parts[1].dBias()), 0));
            }
        }
        if (!bp.needs(down) && !bp.needs(up)) {
            return;
        }
        LoraGrads[] lora = new LoraGrads[2];
        for (int i = 0; i < 2; i++) {
            lora[i] = b.loraAddBackward(s, d[i], x, hidden, down, b.narrow(s, up, 0, i * h, h), scale, false,
                    bp.needs(down), bp.needs(up));
            bp.accumulate(down, lora[i].dDown());
        }
        if (bp.needs(up)) {
            bp.accumulate(up, b.cat(s, List.of(lora[0].dUp(), lora[1].dUp()), 0));
        }
    }
}
