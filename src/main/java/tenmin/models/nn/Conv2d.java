package tenmin.models.nn;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * {@code y = conv(x, W, stride, padding) + b (+ adapter(x))}: x (N, in, H, W) → (N, out, Ho, Wo);
 * weight (out, in, k, k), bias (out). Weight and bias are cast to x's dtype when they differ (16-bit or fp8 frozen
 * weights); no copy when equal.
 */
public final class Conv2d implements AdaptableLayer {
    private final String path;
    private final int in;
    private final int out;
    private final int kernel;
    private final int stride;
    private final int padding;
    private Tensor weight; // (out, in, k, k)
    private final Tensor bias;   // (out) or null
    private Adapter adapter;

    public Conv2d(Params p, int in, int out, int kernel, int stride, int padding, boolean bias) {
        this.path = p.path();
        this.in = in;
        this.out = out;
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
        this.weight = p.get("weight", Shape.of(out, in, kernel, kernel));
        this.bias = bias ? p.get("bias", Shape.of(out)) : null;
        p.register(this);
    }

    public Tensor forward(Functional f, Tensor x) {
        Tensor w = f.cast(weight, x.dtype());
        Tensor b = bias == null ? null : f.cast(bias, x.dtype());
        Tensor y = adapter == null ? f.conv2d(x, w, b, stride, padding) : adapter.addToConv2d(f, x, w, b, stride, padding);
        f.release(w, b);                 // only casts made here; frozen weights of x's dtype are left alone
        return y;
    }

    @Override
    public String path() {
        return path;
    }

    @Override
    public Kind kind() {
        return Kind.CONV;
    }

    @Override
    public int inFeatures() {
        return in;
    }

    @Override
    public int outFeatures() {
        return out;
    }

    @Override
    public int kernel() {
        return kernel;
    }

    @Override
    public int stride() {
        return stride;
    }

    @Override
    public int padding() {
        return padding;
    }

    @Override
    public Tensor weight() {
        return weight;
    }

    @Override
    public void replaceWeight(Tensor w) {
        AdaptableLayer.checkReplacement(path, weight, w);
        weight = w;
    }

    public Tensor bias() {
        return bias;
    }

    @Override
    public Adapter adapter() {
        return adapter;
    }

    @Override
    public void setAdapter(Adapter adapter) {
        this.adapter = adapter;
    }
}
