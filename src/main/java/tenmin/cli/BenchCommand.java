package tenmin.cli;

import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code tenmin bench}: benchmark helpers (subcommands); never run by the test suite. */
@Command(name = "bench",
        mixinStandardHelpOptions = true,
        description = "Benchmark helpers (see docs/PERFORMANCE.md).",
        subcommands = {MakeInputsCommand.class},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input", "  1  internal failure",
                "", "Example:", "  tenmin bench make-inputs bench/"})
public final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return 0;
    }
}
