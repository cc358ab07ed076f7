package tenmin.models.nn;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/** {@code y = x·Wᵀ + b (+ adapter(x))}: x (.., in) → (.., out); weight (out, in), bias (out). */
public final class Linear implements AdaptableLayer {
    private final String path;
    private final int in;
    private final int out;
    private final Tensor weight; // (out, in)
    private final Tensor bias;   // (out) or null
    private Adapter adapter;

    public Linear(Params p, int in, int out, boolean bias) {
        this.path = p.path();
        this.in = in;
        this.out = out;
        this.weight = p.get("weight", Shape.of(out, in));
        this.bias = bias ? p.get("bias", Shape.of(out)) : null;
        p.register(this);
    }

    public Tensor forward(Functional f, Tensor x) {
        Tensor y = f.linear(x, weight, bias);
        return adapter == null ? y : f.add(y, adapter.apply(f, x));
    }

    @Override
    public String path() {
        return path;
    }

    @Override
    public Kind kind() {
        return Kind.LINEAR;
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
        return 1;
    }

    @Override
    public int stride() {
        return 1;
    }

    @Override
    public int padding() {
        return 0;
    }

    @Override
    public Tensor weight() {
        return weight;
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
