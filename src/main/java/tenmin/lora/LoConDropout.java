package tenmin.lora;

/**
 * LyCORIS's three dropouts of a LoCon module while training (trainer-spec §8.6; LyCORIS 3.1's bypass forward, the
 * reference's): each a probability in [0, 1], 0 off. Drawn per module call, only in a forward that carries
 * randomness ({@code Functional#randomness}); sampling and evaluation never drop.
 *
 * @param network {@code dropout} ({@code --network_dropout}): PyTorch's {@code nn.Dropout} on the branch's output,
 *                each value kept with probability 1 − p and then divided by 1 − p
 * @param rank    {@code rank_dropout}: one keep-mask over the module's r rank channels (kept where a uniform draw
 *                exceeds p), shared by the whole batch, not rescaled (LyCORIS's {@code rank_dropout_scale}, which
 *                its kohya entry point does not pass, is off)
 * @param module  {@code module_dropout}: with probability p the call returns the frozen layer's output alone
 */
public record LoConDropout(double network, double rank, double module) {
    /** No dropout (the guide's recipe). */
    public static final LoConDropout NONE = new LoConDropout(0, 0, 0);

    public LoConDropout {
        check("dropout", network);
        check("rank_dropout", rank);
        check("module_dropout", module);
    }

    private static void check(String name, double p) {
        if (!(p >= 0 && p <= 1)) {
            throw new IllegalArgumentException(name + " must lie in [0, 1], not " + p);
        }
    }

    /** True when any of the three is on. */
    public boolean any() {
        return network > 0 || rank > 0 || module > 0;
    }
}
