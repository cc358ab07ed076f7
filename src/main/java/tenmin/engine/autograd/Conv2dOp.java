package tenmin.engine.autograd;

import tenmin.engine.api.Backend.LayerGrads;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.Tensor;

/**
 * 2-D convolution: x (N, C, H, W), weight (O, C, k, k), bias (O) or null → (N, O, Ho, Wo).
 * Saves: x, weight, stride, padding, whether there is a bias.
 */
final class Conv2dOp extends Op {
    private final Tensor x;
    private final Tensor weight;
    private final Tensor bias;
    private final int stride;
    private final int padding;

    private Conv2dOp(Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        this.x = x;
        this.weight = weight;
        this.bias = bias;
        this.stride = stride;
        this.padding = padding;
    }

    static Tensor forward(Functional f, Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        Tensor y = f.backend().convolution(f.scope(), x, weight, bias, stride, padding);
        if (f.records(x, weight, bias)) {
            f.record(new Conv2dOp(x, weight, bias, stride, padding), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {x, weight};
    }

    @Override
    String name() {
        return "conv2d";
    }

    // y[n,o,i,j] = b[o] + Σ_{c,u,v} W[o,c,u,v] · x[n,c,i·s+u-p, j·s+v-p]
    // dx = transposed convolution of dy with W; dW[o,c,u,v] = Σ_{n,i,j} dy[n,o,i,j] · x[n,c,i·s+u-p, j·s+v-p];
    // db[o] = Σ_{n,i,j} dy[n,o,i,j]. PyTorch: aten::convolution_backward with output_mask.
    @Override
    void backward(Backprop bp) {
        OutputMask mask = bp.mask(x, weight, bias);
        LayerGrads g = bp.backend().convolutionBackward(bp.scratch(), bp.grad(0), x, weight, stride, padding, mask);
        bp.accumulate(g, x, weight, bias);
    }
}
