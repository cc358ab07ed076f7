package tenmin.engine.autograd;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/**
 * Gradient checkpointing of a block: the forward runs without a tape in a scope that is closed at
 * once, so only the block's inputs (and outputs) stay alive; the backward recomputes the forward on a
 * sub-tape and backpropagates through it.
 * Saves: the block, its inputs, its name, the draws' copy.
 *
 * <p>Results are bit-identical to running without checkpointing: kernels are deterministic, the
 * recomputed ops run backward in the same order, and the partial gradients of the inputs are handed
 * to the sub-tape before its backward so contributions are summed in the same order; a stochastic forward's
 * draws (dropout) are replayed from a copy of its {@link Randomness} taken where the block started.
 */
final class CheckpointOp extends Op {
    private final String blockName;
    private final Functional.MultiBlock block;
    private final List<Tensor> inputs;
    /** The forward's draws where the block started (null: deterministic), replayed by the recomputation. */
    private final Randomness draws;

    private CheckpointOp(String blockName, Functional.MultiBlock block, List<Tensor> inputs, Randomness draws) {
        this.blockName = blockName;
        this.block = block;
        this.inputs = inputs;
        this.draws = draws;
    }

    static List<Tensor> forward(Functional f, String name, boolean enabled, Functional.MultiBlock block,
                                List<Tensor> inputs) {
        if (!enabled) {
            return block.apply(f, inputs);
        }
        List<Tensor> outputs = new ArrayList<>();
        Randomness draws = f.randomness() == null ? null : f.randomness().copy();
        try (Scope inner = f.scope().child("checkpoint " + name)) {
            // recorded, or itself replayed: its recomputation must give these bits, so no inference kernels inside;
            // it draws from the outer forward's randomness (advancing it as without checkpointing)
            Functional first = (f.allowsInferenceKernels() ? Functional.inference(inner) : Functional.replayed(inner))
                    .withRandomness(f.randomness());
            for (Tensor out : block.apply(first, inputs)) {
                // Outputs made in the block move out; a passed-through input or parameter gets its own alias.
                outputs.add(out.scope() == inner ? inner.keep(out) : f.backend().reshape(f.scope(), out, out.shape()));
            }
        }
        if (f.isRecording()) {
            f.record(new CheckpointOp(name, block, List.copyOf(inputs), draws), outputs.toArray(new Tensor[0]));
        }
        // without a tape (inference) nothing is recomputed: the block's intermediates are simply released
        return outputs;
    }

    @Override
    Tensor[] reads() {
        return inputs.toArray(new Tensor[0]);   // the recomputation runs the block on them again
    }

    @Override
    String name() {
        return "checkpoint " + blockName;
    }

    // Recompute y = block(inputs) on a sub-tape, then backpropagate the output gradients through it.
    // PyTorch: torch.utils.checkpoint (non-reentrant semantics).
    @Override
    void backward(Backprop bp) {
        Scope s = bp.scratch();
        List<Tensor> captured = new ArrayList<>();
        for (Tensor in : inputs) {
            if (bp.needs(in) && !in.requiresGrad() && !captured.contains(in)) {
                captured.add(in);
            }
        }
        Tape sub = bp.tape().subTape(s, blockName, captured);
        for (Tensor in : captured) {
            Tensor partial = bp.tape().takeGrad(in);
            if (partial != null) {
                sub.addGrad(in, partial, null);
                partial.close();
            }
        }
        // the recomputation draws what the forward drew (a copy: a second backward would draw them again)
        Functional again = Functional.recording(s, sub).withRandomness(draws == null ? null : draws.copy());
        List<Tensor> outputs = block.apply(again, inputs);
        List<Tensor> roots = new ArrayList<>();
        List<Tensor> seeds = new ArrayList<>();
        for (int i = 0; i < outputs.size(); i++) {
            Tensor g = bp.grad(i);
            if (g != null && sub.tracks(outputs.get(i))) {
                roots.add(outputs.get(i));
                seeds.add(g);
            }
        }
        Map<Tensor, Tensor> grads = sub.backward(roots, seeds);
        for (Tensor in : captured) {
            Tensor g = grads.get(in);
            if (g != null) {
                bp.tape().addGrad(in, g, s);
            }
        }
    }
}
