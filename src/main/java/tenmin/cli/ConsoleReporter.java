package tenmin.cli;

import java.io.PrintStream;
import java.util.Locale;

import tenmin.core.Reporter;

/**
 * Log lines and progress on a stream: a redrawn bar on a terminal, plain periodic lines otherwise
 * (at most one every {@link #PLAIN_INTERVAL_MILLIS}, so logs and CI output stay short).
 */
final class ConsoleReporter implements Reporter {
    static final long PLAIN_INTERVAL_MILLIS = 10_000;
    private static final long BAR_INTERVAL_MILLIS = 100;

    private final PrintStream err;
    private final Level minLevel;
    private final boolean terminal;

    ConsoleReporter(PrintStream err, Level minLevel, boolean terminal) {
        this.err = err;
        this.minLevel = minLevel;
        this.terminal = terminal;
    }

    /**
     * True when stderr is an interactive terminal. Java cannot test file descriptor 2 itself, so the
     * launcher sets {@code TENMIN_STDERR_TTY=1|0}; without it (tests, embedding) the answer is no.
     * {@code TENMIN_PLAIN_PROGRESS} forces plain lines.
     */
    static boolean isTerminal() {
        return "1".equals(System.getenv("TENMIN_STDERR_TTY")) && System.getenv("TENMIN_PLAIN_PROGRESS") == null;
    }

    @Override
    public void log(Level level, String line) {
        if (enabled(level)) {
            err.println(line);
        }
    }

    @Override
    public boolean enabled(Level level) {
        return level.ordinal() >= minLevel.ordinal();
    }

    @Override
    public Progress progress(String label, long total) {
        return new Bar(label, total);
    }

    private final class Bar implements Progress {
        private final String label;
        private final long total;
        private final long startNanos = System.nanoTime();
        private long done;
        private long lastPrintMillis;
        private boolean closed;
        private String status = "";

        Bar(String label, long total) {
            this.label = label;
            this.total = total;
            this.lastPrintMillis = System.currentTimeMillis();
        }

        @Override
        public synchronized void advance(long units) {
            done += units;
            long now = System.currentTimeMillis();
            long interval = terminal ? BAR_INTERVAL_MILLIS : PLAIN_INTERVAL_MILLIS;
            if (now - lastPrintMillis >= interval) {
                lastPrintMillis = now;
                print(false);
            }
        }

        @Override
        public synchronized void status(String text) {
            status = text == null ? "" : text;
        }

        @Override
        public synchronized void close() {
            if (closed) {
                return;
            }
            closed = true;
            if (terminal) {
                print(true);
            }
        }

        private void print(boolean last) {
            double seconds = (System.nanoTime() - startNanos) / 1e9;
            String count = total > 0 ? done + "/" + total : Long.toString(done);
            String rate = !status.isEmpty() ? status
                    : seconds > 0 ? String.format(Locale.ROOT, "%.1f/s", done / seconds) : "";
            if (terminal) {
                int width = 30;
                int filled = total > 0 ? (int) Math.min(width, width * done / total) : 0;
                String bar = "#".repeat(filled) + " ".repeat(width - filled);
                err.print("\r" + label + " [" + bar + "] " + count + " " + rate + "\033[K" + (last ? "\n" : ""));
            } else {
                err.println(label + ": " + count + " " + rate);
            }
            err.flush();
        }
    }
}
