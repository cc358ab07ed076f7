package tenmin.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.Reporter;
import tenmin.tools.Merge;
import tenmin.tools.MergeConfig;

/** {@code tenmin merge}: bakes LoRAs into a checkpoint (kohya sdxl_merge_lora.py), streaming. */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Bakes one or more LoRAs into an SDXL checkpoint: W += weight * alpha/rank * up @ down, in fp32, saved"
                        + " in the checkpoint's dtype; text encoder 2 q/k/v go into the right rows of"
                        + " in_proj_weight. Everything else is copied byte for byte and the metadata is kept.",
                "The checkpoint is streamed tensor by tensor, never held in memory."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (files, weights, unmatched modules, vector)",
                "  1  internal failure",
                "", "Example:", "  tenmin merge sd_xl_base_1.0.safetensors style.safetensors:0.8 char.safetensors -o merged.safetensors"})
public final class MergeCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "Base checkpoint (.safetensors, SAI/sgm key layout).")
    Path checkpoint;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "LORA[:WEIGHT]",
            description = "LoRA files, each with an optional strength (default 1); C:\\x.safetensors stays a path.")
    List<String> loras;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "Merged checkpoint to write.")
    Path output;

    @Option(names = "--blocks", paramLabel = "VECTOR", description = "Block-weight vector applied to every LoRA"
            + " (as in 'tenmin blocks': Inspire-Pack form, preset, %%shorthand or A1111 12/20 slots).")
    String blocks;

    @Mixin
    BlockVectorOptions vectorOptions;

    @Option(names = "--skip-unmatched", description = "Merge what matches; warn about LoRA modules that have no"
            + " weight in the checkpoint (default: fail and name them).")
    boolean skipUnmatched;

    @Mixin
    VerboseMixin verboseMixin;

    public MergeCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        List<MergeConfig.LoraSpec> specs = loras.stream().map(MergeConfig.LoraSpec::parse).toList();
        Merge.Result r = Merge.run(new MergeConfig(checkpoint, specs, blocks, vectorOptions.toOptions(), output,
                skipUnmatched), session.reporter(Reporter.Level.INFO));
        session.out().println("Merged " + r.modules() + " LoRA modules from " + specs.size() + " file(s) into "
                + r.weights() + " checkpoint weights" + (r.skipped() > 0 ? " (" + r.skipped() + " skipped)" : ""));
        session.out().println("Saved " + r.output());
        return 0;
    }
}
