package tenmin.sample;

import java.util.List;

import tenmin.engine.api.DType;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.lora.LoConModule;
import tenmin.models.nn.Adapter;

/**
 * The adapter of one layer carrying LoRA branches for sampling: {@code Σ_m w_m · branch_m(x)}, where
 * {@code w_m} is a number, or one number per sample of the batch given as an (N) tensor and broadcast over
 * the other dimensions of the branch output (N, ...).
 */
final class LayerBranches implements Adapter {

    /**
     * One module and its weight.
     *
     * @param module    the branch ({@code multiplier · alpha/r · up(down(x))})
     * @param scalar    its multiplier when {@code perSample} is null
     * @param perSample (N) F32 multipliers of the samples, or null
     */
    record Branch(LoConModule module, double scalar, Tensor perSample) {
    }

    private final List<Branch> branches;

    private LayerBranches(List<Branch> branches) {
        this.branches = List.copyOf(branches);
    }

    /**
     * The adapter for {@code branches}: null for none, the module itself for one scalar branch (the cheapest
     * form, and the one training uses), else a sum.
     */
    static Adapter of(List<Branch> branches) {
        if (branches.isEmpty()) {
            return null;
        }
        if (branches.size() == 1 && branches.getFirst().perSample() == null) {
            Branch b = branches.getFirst();
            b.module().setMultiplier(b.scalar());
            return b.module();
        }
        return new LayerBranches(branches);
    }

    @Override
    public Tensor apply(Functional f, Tensor x) {
        Tensor sum = null;
        for (Branch b : branches) {
            // the module object is shared by every configuration; set its multiplier right before use
            b.module().setMultiplier(b.perSample() == null ? b.scalar() : 1.0);
            Tensor h = b.module().apply(f, x);                          // (N, ...)
            if (b.perSample() != null) {
                h = f.mul(h, broadcastable(f, b.perSample(), h));
            }
            sum = sum == null ? h : f.add(sum, h);
        }
        return sum;
    }

    /** (N) weights as (N, 1, ..., 1) of {@code like}'s rank and dtype. */
    private static Tensor broadcastable(Functional f, Tensor weights, Tensor like) {
        int n = weights.dim(0);
        if (like.dim(0) != n) {
            throw new IllegalStateException("per-sample LoRA multipliers for " + n + " samples, but the branch output is "
                    + like.describe());
        }
        int[] dims = new int[like.rank()];
        java.util.Arrays.fill(dims, 1);
        dims[0] = n;
        Tensor w = f.reshape(weights, dims);
        return like.dtype() == DType.F32 ? w : f.cast(w, like.dtype());
    }
}
