package tenmin.cli;

import java.util.Locale;

import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.lora.BlockWeights;

/** The options that go with a block-weight vector ({@code blocks}, {@code merge --blocks}). */
final class BlockVectorOptions {
    @Option(names = "--inverse", description = "Use 1 - ratio for every entry (Inspire-Pack's inverse).")
    boolean inverse;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the R/U random entries (default ${DEFAULT-VALUE};"
            + " numpy's generator, so Inspire-Pack draws the same values).")
    long seed = 0;

    @Option(names = "-A", paramLabel = "x", description = "Value of A (a = A/2); default ${DEFAULT-VALUE}.")
    double a = 4.0;

    @Option(names = "-B", paramLabel = "y", description = "Value of B (b = B/2); default ${DEFAULT-VALUE}.")
    double b = 1.0;

    @Option(names = "--format", paramLabel = "F", description = "Vector family: auto (default), inspire, lbw"
            + " (A1111 fixed 12/20 slots). auto: 1 + blocks-present entries or a preset = inspire; 12 or 20 plain"
            + " numbers otherwise = lbw.")
    String format = "auto";

    @Option(names = "--compat", description = "Take a new Inspire-Pack entry only when the block number changes, as"
            + " Inspire-Pack does (so input_blocks.1 followed by middle_block.1 share one entry); default: each block"
            + " present takes its own entry.")
    boolean compat;

    BlockWeights.Options toOptions() {
        BlockWeights.Format f = switch (format.toLowerCase(Locale.ROOT)) {
            case "auto" -> BlockWeights.Format.AUTO;
            case "inspire" -> BlockWeights.Format.INSPIRE;
            case "lbw" -> BlockWeights.Format.LBW;
            default -> throw new InputException("--format " + format + ": expected auto, inspire or lbw");
        };
        if (!Double.isFinite(a) || !Double.isFinite(b)) {
            throw new InputException("-A and -B must be finite numbers");
        }
        return new BlockWeights.Options(f, inverse, seed, a, b, compat);
    }
}
