package tenmin.core;

/**
 * Where library code sends its log lines and progress; library code never prints.
 *
 * <p>Log lines arrive fully formatted in the style of the tool they imitate (for example
 * {@code INFO:root:Saving x.safetensors} for resize, {@code INFO: Blocks layout:} for chop); the
 * reporter only decides whether a level is shown and where it goes.
 */
public interface Reporter {

    /** Python logging levels, the ones the reference tools use. */
    enum Level { DEBUG, INFO, WARNING, ERROR }

    /** Emits one formatted line if {@code level} is enabled. */
    void log(Level level, String line);

    /** Whether lines of this level are shown (lets callers skip expensive formatting). */
    boolean enabled(Level level);

    /** Starts a progress task of {@code total} units (0 when unknown); close it when done. */
    Progress progress(String label, long total);

    /** A running progress task: a bar on a terminal, plain periodic lines otherwise. */
    interface Progress extends AutoCloseable {
        void advance(long units);

        /**
         * Replaces the text shown after the counter (e.g. {@code loss 0.123 lr 3.0e-04 2.1 img/s 0:42 left});
         * shown with the next redraw. Reporters that show no progress ignore it.
         */
        default void status(String text) {
        }

        @Override
        void close();
    }

    /** A reporter that drops everything (library tests, nested calls). */
    Reporter SILENT = new Reporter() {
        @Override
        public void log(Level level, String line) {
        }

        @Override
        public boolean enabled(Level level) {
            return false;
        }

        @Override
        public Progress progress(String label, long total) {
            return new Progress() {
                @Override
                public void advance(long units) {
                }

                @Override
                public void close() {
                }
            };
        }
    };
}
