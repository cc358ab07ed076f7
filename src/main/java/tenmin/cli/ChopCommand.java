package tenmin.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.Reporter;
import tenmin.tools.Chop;
import tenmin.tools.ChopConfig;

/** {@code tenmin chop}: chop_blocks.py — block layout of a LoRA, and removal/scaling of blocks. */
@Command(name = "chop", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Shows a LoRA's UNet block layout (as chop_blocks.py prints it); with a VECTOR, removes the blocks"
                        + " weighted 0 and writes <stem>-chop.safetensors next to the input.",
                "VECTOR is g,w1,...,wn: a global multiplier for the UNet blocks, then one weight per block of the"
                        + " layout. Text-encoder keys pass through unchanged. Weights 0/1 copy bytes verbatim; a"
                        + " fractional weight multiplies each module's lora_up.weight (the delta scales linearly)."
                        + " The input metadata is kept and block_vector_string added."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (file, vector)", "  1  internal failure",
                "", "Example:", "  tenmin chop my-lora.safetensors 1,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0"})
public final class ChopCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", paramLabel = "LORA", description = "LoRA file (.safetensors).")
    Path input;

    @Parameters(index = "1", arity = "0..1", paramLabel = "VECTOR",
            description = "Block weights g,w1,...,wn; omit to only print the layout.")
    String vector;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT", description = "Output file (default <stem>-chop.safetensors).")
    Path output;

    @Option(names = "-v", description = "More log lines (repeatable, as chop_blocks.py).")
    boolean[] more = new boolean[0];

    @Option(names = "-q", description = "Fewer log lines (repeatable): -q shows only warnings and errors.")
    boolean[] less = new boolean[0];

    @Option(names = "--compat", description = "Scale fractional weights as chop_blocks.py does: alpha, lora_up and"
            + " lora_down each times w (the delta scales by w cubed), with numpy's fp16 rounding; with -v the"
            + " weighted layout is not printed, as chop_blocks.py does.")
    boolean compat;

    @Mixin
    VerboseMixin verboseMixin;

    public ChopCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        // chop_blocks: verbosity 1 + count(-v) - count(-q), clamped to 0..2 → WARNING, INFO, DEBUG
        int verbosity = Math.max(0, Math.min(2, 1 + more.length - less.length));
        Reporter.Level level = verbosity == 0 ? Reporter.Level.WARNING
                : verbosity == 1 ? Reporter.Level.INFO : Reporter.Level.DEBUG;
        if (vector == null) {
            var lines = Chop.analysis(input);
            if (level.ordinal() <= Reporter.Level.INFO.ordinal()) {
                lines.forEach(session.out()::println);
            }
            return 0;
        }
        Chop.run(new ChopConfig(input, vector, output, compat), session.reporter(level));
        return 0;
    }
}
