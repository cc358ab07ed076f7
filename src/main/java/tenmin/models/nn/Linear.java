package tenmin.models.nn;

import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;

/**
 * {@code y = x·Wᵀ + b (+ adapter(x))}: x (.., in) → (.., out); weight (out, in), bias (out). Weight and bias
 * are cast to x's dtype when they differ (frozen bf16 weights under fp32 activations, fp8 weights under any: what
 * PyTorch's autocast does at each use); no copy when equal.
 */
public final class Linear implements AdaptableLayer {
    private final String path;
    private final int in;
    private final int out;
    private Tensor weight; // (out, in)
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

    /**
     * A linear layer over tensors the caller already holds (e.g. a row block of a fused projection such
     * as OpenCLIP's {@code attn.in_proj_weight}), registered among {@code p}'s layers under {@code path}
     * (the module path LoRA names are built from, which may differ from the checkpoint key). Weight
     * (out, in) and bias (out) may be null only when {@code p} is meta.
     */
    public Linear(Params p, String path, int in, int out, Tensor weight, Tensor bias) {
        if (!p.isMeta() && (weight == null || !weight.shape().equals(Shape.of(out, in))
                || (bias != null && !bias.shape().equals(Shape.of(out))))) {
            throw new IllegalArgumentException("Linear " + path + " (" + in + " -> " + out + "): weight "
                    + (weight == null ? "null" : weight.describe()) + ", bias " + (bias == null ? "none" : bias.describe()));
        }
        this.path = path;
        this.in = in;
        this.out = out;
        this.weight = weight;
        this.bias = bias;
        p.register(this);
    }

    public Tensor forward(Functional f, Tensor x) {
        Tensor w = f.cast(weight, x.dtype());
        Tensor b = bias == null ? null : f.cast(bias, x.dtype());
        Tensor y = adapter == null ? f.linear(x, w, b) : adapter.addToLinear(f, x, w, b);
        f.release(w, b);                 // only casts made here; frozen weights of x's dtype are left alone
        return y;
    }

    /**
     * {@code geglu(forward(x))}: a layer of 2H outputs feeding sgm's GEGLU (value, gate halves). Without an adapter
     * where the facade {@link Functional#allowsInferenceKernels}, the backend's {@code linearGeglu} (two products on
     * the weight's row blocks); with one, {@link Adapter#addToLinearGeglu}; otherwise the layer, then the GEGLU.
     */
    public Tensor forwardGeglu(Functional f, Tensor x) {
        Tensor w = f.cast(weight, x.dtype());
        Tensor b = bias == null ? null : f.cast(bias, x.dtype());
        Tensor y;
        if (adapter != null) {
            y = adapter.addToLinearGeglu(f, x, w, b);
        } else if (f.allowsInferenceKernels()) {
            y = f.backend().linearGeglu(f.scope(), x, w, b);
        } else {
            Tensor proj = f.linear(x, w, b);
            y = f.geglu(proj);
            f.release(proj);
        }
        f.release(w, b);
        return y;
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
