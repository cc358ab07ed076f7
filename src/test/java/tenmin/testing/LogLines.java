package tenmin.testing;

import java.util.ArrayList;
import java.util.List;

import tenmin.core.Reporter;

/** A reporter that keeps every log line (all levels) for assertions; progress is discarded. */
public final class LogLines implements Reporter {
    private final List<String> lines = new ArrayList<>();

    @Override
    public void log(Level level, String line) {
        lines.add(line);
    }

    @Override
    public boolean enabled(Level level) {
        return true;
    }

    @Override
    public Progress progress(String label, long total) {
        return SILENT.progress(label, total);
    }

    /** The lines so far, in order. */
    public List<String> lines() {
        return List.copyOf(lines);
    }

    /** How many lines start with {@code prefix} and contain {@code text}. */
    public long count(String prefix, String text) {
        return lines.stream().filter(l -> l.startsWith(prefix) && l.contains(text)).count();
    }
}
