package tenmin.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.Reporter;
import tenmin.tools.Inspect;
import tenmin.tools.InspectText;

/** {@code tenmin inspect}: what is in a LoRA or checkpoint file. */
@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Describes a .safetensors file. For a LoRA: metadata (JSON values such as ss_network_args and"
                        + " ss_tag_frequency pretty-printed), every module's type, rank, alpha, alpha/rank, dtype and"
                        + " |dW|_F, zero modules, the energy per UNet block (chop layout, Inspire-Pack and A1111 slot"
                        + " names) and the hashes (sha256, AutoV2, data-section hash, sshs_* checked). For a"
                        + " checkpoint: tensors, parameters and dtypes per component, and the hashes."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (missing or malformed file)", "  1  internal failure",
                "", "Example:", "  tenmin inspect my-lora.safetensors --json > my-lora.json"})
public final class InspectCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", paramLabel = "FILE", description = "LoRA or checkpoint (.safetensors).")
    Path file;

    @Option(names = "--json", description = "Machine-readable output (one JSON object).")
    boolean json;

    @Option(names = "--no-hash", description = "Skip the hashes (which read the whole file).")
    boolean noHash;

    @Mixin
    VerboseMixin verboseMixin;

    public InspectCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        Inspect.Report report = Inspect.run(file, !noHash, session.reporter(Reporter.Level.INFO));
        if (json) {
            session.out().println(InspectText.json(report));
        } else {
            InspectText.text(report).forEach(session.out()::println);
        }
        return 0;
    }
}
