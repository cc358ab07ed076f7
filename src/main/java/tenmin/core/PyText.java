package tenmin.core;

/**
 * Python's character classes for {@code str} regular expressions, which the reference tools' text
 * handling relies on (CLIP's clean-up, A1111's prompt parser): {@code \s} is {@code str.isspace} and
 * {@code \w} is letters, numbers and underscore over all of Unicode, unlike Java's ASCII defaults.
 */
public final class PyText {
    private PyText() {
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
