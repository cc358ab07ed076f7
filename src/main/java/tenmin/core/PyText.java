package tenmin.core;

/**
 * Python's character classes for {@code str} regular expressions, which the reference tools' text
 * handling relies on (CLIP's clean-up, A1111's prompt parser): {@code \s} is {@code str.isspace} and
 * {@code \w} is letters, numbers and underscore over all of Unicode, unlike Java's ASCII defaults.
 */
public final class PyText {
    private PyText() {
    }

    /**
     * A path as Python's {@code str(pathlib.Path(...))} writes it: "." components dropped ({@code ./out/x} is
     * {@code out/x}), ".." kept, a path of only "." components is ".".
     */
    public static String path(java.nio.file.Path p) {
        java.nio.file.Path root = p.getRoot();
        StringBuilder b = new StringBuilder(root == null ? "" : root.toString());
        boolean first = true;
        for (java.nio.file.Path name : p) {
            if (name.toString().equals(".")) {
                continue;
            }
            if (!first) {
                b.append(p.getFileSystem().getSeparator());
            }
            b.append(name);
            first = false;
        }
        return b.isEmpty() ? "." : b.toString();
    }

    /** {@code str.isspace} of one code point: Unicode space separators plus the C0 separators 09-0D, 1C-1F, and U+0085. */
    public static boolean isSpace(int cp) {
        return Character.isSpaceChar(cp) || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85;
    }

    /** {@code \w} of Python's {@code re}: a letter, a number (decimal, letter-like or other) or {@code _}. */
    public static boolean isWord(int cp) {
        if (cp == '_' || Character.isLetter(cp)) {
            return true;
        }
        int type = Character.getType(cp);
        return type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER
                || type == Character.OTHER_NUMBER;
    }

    /** {@code re.sub(r"\s+", " ", text).strip()}: runs of whitespace become one space, none at the ends. */
    public static String collapseWhitespace(String text) {
        StringBuilder sb = new StringBuilder(text.length());
        boolean pendingSpace = false;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (isSpace(cp)) {
                pendingSpace = sb.length() > 0;
            } else {
                if (pendingSpace) {
                    sb.append(' ');
                    pendingSpace = false;
                }
                sb.appendCodePoint(cp);
            }
        }
        return sb.toString();
    }
}
