package tenmin.cli;

import picocli.CommandLine.Option;

/** {@code --verbose}: stack traces with errors (read by {@link Main}'s exception mapper). */
final class VerboseMixin {
    @Option(names = "--verbose", description = "Print stack traces with errors.")
    boolean verbose;
}
