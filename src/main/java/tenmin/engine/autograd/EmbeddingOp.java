package tenmin.engine.autograd;

import tenmin.engine.api.Tensor;

/** Row lookup {@code y[..] = weight[ids[..]]}: weight (V, D), ids (..) I64 → (.., D). Saves: ids, V. */
final class EmbeddingOp extends Op {
    private final Tensor weight;
    private final Tensor ids;

    private EmbeddingOp(Tensor weight, Tensor ids) {
        this.weight = weight;
        this.ids = ids;
    }

    static Tensor forward(Functional f, Tensor weight, Tensor ids) {
        Tensor y = f.backend().embedding(f.scope(), weight, ids);
        if (f.records(weight)) {
            f.record(new EmbeddingOp(weight, ids), y);
        }
        return y;
    }

    @Override
    Tensor[] reads() {
        return new Tensor[] {ids};
    }

    @Override
    String name() {
        return "embedding";
    }

    // dweight[v] = Σ_{positions p with ids[p] = v} dy[p] (scatter-add). PyTorch: aten::embedding_dense_backward.
    @Override
    void backward(Backprop bp) {
        bp.accumulate(weight, bp.backend().embeddingBackward(bp.scratch(), bp.grad(0), ids, weight.dim(0)));
    }
}
