package tenmin.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.Reporter;
import tenmin.lora.BlockWeights;
import tenmin.tools.Blocks;
import tenmin.tools.BlocksConfig;

/** {@code tenmin blocks}: bakes a block-weight vector (Inspire-Pack / A1111 lora-block-weight) into a LoRA. */
@Command(name = "blocks", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Applies a block-weight vector to a LoRA and writes <stem>-lbw.safetensors: each module's delta is"
                        + " scaled by its block's ratio (0 drops the module), so the file behaves like the input"
                        + " loaded through ComfyUI-Inspire-Pack's \"LoRA Loader (Block Weight)\".",
                "VECTOR: Inspire-Pack form BASE,<one entry per block present> (21 for a full LoCon, 12 for an"
                        + " attention-only LoRA; numbers, A, a, B, b, R, U, space-separated per-module values),"
                        + " a preset (SDXL-ALL, SDXL-LyC-OUTALL, ...), NAME:vector, the %% shorthand"
                        + " (%%default=0,out=1,in2-4=0.5), or the A1111 fixed 12/20-slot forms"
                        + " (BASE,IN04,IN05,IN07,IN08,MID,OUT00..OUT05 / BASE,IN00..IN08,MID,OUT00..OUT08)."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (file, vector)", "  1  internal failure",
                "", "Example:", "  tenmin blocks my-lora.safetensors SDXL-LyC-OUTALL -o my-lora-out.safetensors"})
public final class BlocksCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", paramLabel = "LORA", description = "LoRA file (.safetensors).")
    Path input;

    @Parameters(index = "1", paramLabel = "VECTOR", description = "Block-weight vector or preset name.")
    String vector;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT", description = "Output file (default <stem>-lbw.safetensors).")
    Path output;

    @Mixin
    BlockVectorOptions vectorOptions;

    @Mixin
    VerboseMixin verboseMixin;

    public BlocksCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        Blocks.Result r = Blocks.run(new BlocksConfig(input, vector, output,
                vectorOptions.toOptions()), reporter);
        var out = session.out();
        out.println("Format: " + (r.weights().format() == BlockWeights.Format.LBW
                ? "A1111 lora-block-weight, " + r.weights().entries().size() + " slots" : "Inspire-Pack"));
        for (BlockWeights.Entry e : r.weights().entries()) {
            out.printf("  %-16s ratio=%-8s modules=%d%n", e.label(), BlockWeights.text(e.ratio()), e.modules());
        }
        out.println("Populated vector: " + r.weights().populated());
        out.println("Modules: " + r.kept() + " kept (" + r.scaled() + " scaled), " + r.dropped() + " dropped");
        out.println("Saved " + r.output());
        return 0;
    }
}
