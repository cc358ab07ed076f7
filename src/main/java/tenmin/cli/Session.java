package tenmin.cli;

import java.io.PrintStream;

import tenmin.core.Reporter;

/**
 * What one command-line run gives its command: the output streams and a reporter.
 *
 * <p>Results go to {@link #out()}; log lines and progress go to {@link #err()}.
 */
public final class Session {
    private final PrintStream out;
    private final PrintStream err;
    private final boolean verbose;

    Session(PrintStream out, PrintStream err, boolean verbose) {
        this.out = out;
        this.err = err;
        this.verbose = verbose;
    }

    public PrintStream out() {
        return out;
    }

    public PrintStream err() {
        return err;
    }

    public boolean verbose() {
        return verbose;
    }

    /** A reporter printing lines of {@code minLevel} and above to stderr, with progress on stderr. */
    public Reporter reporter(Reporter.Level minLevel) {
        return new ConsoleReporter(err, minLevel, ConsoleReporter.isTerminal());
    }
}
