package tenmin.core;

import java.util.List;
import java.util.regex.Pattern;

/** Command lines printed for users to paste into a POSIX shell. */
public final class ShellWords {
    /** Words that need no quoting in sh, bash or zsh. */
    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9_@%+=:,./-]+");

    private ShellWords() {
    }

    /** The words joined by spaces, each one that the shell would split or expand in single quotes. */
    public static String join(List<String> words) {
        StringBuilder b = new StringBuilder();
        for (String w : words) {
            if (!b.isEmpty()) {
                b.append(' ');
            }
            b.append(quote(w));
        }
        return b.toString();
    }

    /** {@code w} as one shell word: as it is when plain, else in single quotes ({@code '} written {@code '\''}). */
    public static String quote(String w) {
        if (!w.isEmpty() && PLAIN.matcher(w).matches()) {
            return w;
        }
        return "'" + w.replace("'", "'\\''") + "'";
    }
}
