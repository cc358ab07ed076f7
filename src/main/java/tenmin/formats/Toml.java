package tenmin.formats;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;

/**
 * A small TOML 1.0 reader for config files (kohya's {@code --config_file}, sample-prompt files): comments,
 * bare/quoted/dotted keys, basic strings with escapes, literal strings, multi-line strings of both kinds,
 * integers (decimal, hex, octal, binary, underscores), floats (exponents, {@code inf}, {@code nan}),
 * booleans, arrays (nested, multi-line, trailing comma), inline tables, {@code [tables]} and
 * {@code [[arrays of tables]]}. Dates and times are rejected with a clear message.
 *
 * <p>Values come back as {@code String}, {@code Long}, {@code Double}, {@code Boolean},
 * {@code List<Object>} and {@code Map<String, Object>} (insertion-ordered). Errors are
 * {@link InputException}s naming the source and the line.
 */
public final class Toml {
    private final String src;
    private final String name;
    private int pos;
    private int line = 1;

    private Toml(String src, String name) {
        this.src = src;
        this.name = name;
    }

    /** Parses a UTF-8 file. */
    public static Map<String, Object> parse(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new InputException(file + ": cannot read: " + e.getMessage(), e);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new InputException(file + ": not valid UTF-8 text");
        }
        return parse(text, file.toString());
    }

    /** Parses TOML text; {@code sourceName} is used in error messages. */
    public static Map<String, Object> parse(String text, String sourceName) {
        String t = text.startsWith("\uFEFF") ? text.substring(1) : text;
        return new Toml(t, sourceName).document();
    }

    private InputException error(String what) {
        return new InputException(name + ":" + line + ": TOML: " + what);
    }

    // ---------------------------------------------------------------- document structure

    private Map<String, Object> document() {
        Map<String, Object> root = new LinkedHashMap<>();
        Map<String, Object> current = root;
        java.util.Set<Map<String, Object>> explicitTables = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        java.util.Set<Object> inlineOrFrozen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        while (true) {
            skipWsCommentsNewlines();
            if (eof()) {
                return root;
            }
            char c = peek();
            if (c == '[') {
                boolean arrayOfTables = src.startsWith("[[", pos);
                pos += arrayOfTables ? 2 : 1;
                skipWs();
                List<String> key = key();
                skipWs();
                if (!src.startsWith(arrayOfTables ? "]]" : "]", pos)) {
                    throw error("expected '" + (arrayOfTables ? "]]" : "]") + "' after table name " + String.join(".", key));
                }
                pos += arrayOfTables ? 2 : 1;
                endOfLine();
                Map<String, Object> parent = descend(root, key.subList(0, key.size() - 1), inlineOrFrozen);
                String last = key.get(key.size() - 1);
                Object existing = parent.get(last);
                if (arrayOfTables) {
                    List<Object> list;
                    if (existing == null) {
                        list = new ArrayList<>();
                        parent.put(last, list);
                    } else if (existing instanceof List<?> l && !inlineOrFrozen.contains(l)) {
                        @SuppressWarnings("unchecked")
                        List<Object> cast = (List<Object>) l;
                        list = cast;
                    } else {
                        throw error("key " + String.join(".", key) + " is already defined and is not an array of tables");
                    }
                    Map<String, Object> table = new LinkedHashMap<>();
                    list.add(table);
                    current = table;
                } else {
                    if (existing == null) {
                        Map<String, Object> table = new LinkedHashMap<>();
                        parent.put(last, table);
                        current = table;
                    } else if (existing instanceof Map<?, ?> m && !inlineOrFrozen.contains(m) && !explicitTables.contains(m)) {
                        @SuppressWarnings("unchecked")
                        Map<String, Object> cast = (Map<String, Object>) m;
                        current = cast;
                    } else {
                        throw error("table [" + String.join(".", key) + "] is defined twice");
                    }
                    explicitTables.add(current);
                }
            } else {
                List<String> key = key();
                skipWs();
                if (eof() || peek() != '=') {
                    throw error("expected '=' after key " + String.join(".", key));
                }
                pos++;
                skipWs();
                Object value = value(inlineOrFrozen);
                Map<String, Object> target = descend(current, key.subList(0, key.size() - 1), inlineOrFrozen);
                String last = key.get(key.size() - 1);
                if (target.containsKey(last)) {
                    throw error("key " + String.join(".", key) + " is defined twice");
                }
                target.put(last, value);
                endOfLine();
            }
        }
    }

    /** Walks (creating) the tables named by {@code path} below {@code from}. */
    private Map<String, Object> descend(Map<String, Object> from, List<String> path, java.util.Set<Object> frozen) {
        Map<String, Object> t = from;
        for (String k : path) {
            Object o = t.get(k);
            if (o == null) {
                Map<String, Object> m = new LinkedHashMap<>();
                t.put(k, m);
                t = m;
            } else if (o instanceof Map<?, ?> m && !frozen.contains(m)) {
                @SuppressWarnings("unchecked")
                Map<String, Object> cast = (Map<String, Object>) m;
                t = cast;
            } else if (o instanceof List<?> l && !l.isEmpty() && l.get(l.size() - 1) instanceof Map<?, ?> m
                    && !frozen.contains(l)) {
                @SuppressWarnings("unchecked")
                Map<String, Object> cast = (Map<String, Object>) m;
                t = cast;
            } else {
                throw error("key " + k + " is not a table");
            }
        }
        return t;
    }

    private List<String> key() {
        List<String> parts = new ArrayList<>();
        while (true) {
            skipWs();
            if (eof()) {
                throw error("expected a key");
            }
            char c = peek();
            if (c == '"') {
                if (src.startsWith("\"\"\"", pos)) {
                    throw error("a key cannot be a multi-line string");
                }
                parts.add(basicString());
            } else if (c == '\'') {
                if (src.startsWith("'''", pos)) {
                    throw error("a key cannot be a multi-line string");
                }
                parts.add(literalString());
            } else {
                int start = pos;
                while (!eof() && isBareKeyChar(peek())) {
                    pos++;
                }
                if (start == pos) {
                    throw error("unexpected character '" + c + "' where a key was expected");
                }
                parts.add(src.substring(start, pos));
            }
            skipWs();
            if (!eof() && peek() == '.') {
                pos++;
                continue;
            }
            return parts;
        }
    }

    private static boolean isBareKeyChar(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    }

    // ---------------------------------------------------------------- values

    private Object value(java.util.Set<Object> frozen) {
        if (eof()) {
            throw error("expected a value");
        }
        char c = peek();
        switch (c) {
            case '"':
                return src.startsWith("\"\"\"", pos) ? multiLineBasicString() : basicString();
            case '\'':
                return src.startsWith("'''", pos) ? multiLineLiteralString() : literalString();
            case '[':
                return array(frozen);
            case '{':
                return inlineTable(frozen);
            case 't':
                if (src.startsWith("true", pos) && !bareContinues(pos + 4)) {
                    pos += 4;
                    return Boolean.TRUE;
                }
                break;
            case 'f':
                if (src.startsWith("false", pos) && !bareContinues(pos + 5)) {
                    pos += 5;
                    return Boolean.FALSE;
                }
                break;
            default:
                break;
        }
        return number();
    }

    private boolean bareContinues(int at) {
        return at < src.length() && isBareKeyChar(src.charAt(at));
    }

    private Object number() {
        int start = pos;
        while (!eof() && "0123456789abcdefABCDEFxXoO+-._eEinftyINF:TZ".indexOf(peek()) >= 0) {
            pos++;
        }
        String tok = src.substring(start, pos);
        if (tok.isEmpty()) {
            throw error("unexpected character '" + peek() + "' where a value was expected"
                    + (peek() == '\n' ? " (missing value)" : " (strings need quotes)"));
        }
        if (tok.matches("\\d{4}-\\d{2}-\\d{2}.*") || tok.matches("\\d{2}:\\d{2}.*")) {
            throw error("dates and times are not supported (" + tok + ")");
        }
        switch (tok) {
            case "inf", "+inf":
                return Double.POSITIVE_INFINITY;
            case "-inf":
                return Double.NEGATIVE_INFINITY;
            case "nan", "+nan", "-nan":
                return Double.NaN;
            default:
                break;
        }
        if (tok.startsWith("0x") || tok.startsWith("0o") || tok.startsWith("0b")) {
            int radix = tok.charAt(1) == 'x' ? 16 : tok.charAt(1) == 'o' ? 8 : 2;
            String digits = underscores(tok.substring(2), tok);
            try {
                return Long.parseUnsignedLong(digits, radix);
            } catch (NumberFormatException e) {
                throw error("invalid integer " + tok);
            }
        }
        boolean isFloat = tok.indexOf('.') >= 0 || ((tok.indexOf('e') >= 0 || tok.indexOf('E') >= 0));
        String clean = underscores(tok, tok);
        String unsigned = clean.startsWith("+") || clean.startsWith("-") ? clean.substring(1) : clean;
        if (unsigned.length() > 1 && unsigned.charAt(0) == '0' && Character.isDigit(unsigned.charAt(1))) {
            throw error("leading zeros are not allowed in " + tok);
        }
        if (isFloat) {
            if (!clean.matches("[+-]?\\d+(\\.\\d+)?([eE][+-]?\\d+)?")) {
                throw error("invalid float " + tok);
            }
            return Double.parseDouble(clean);
        }
        if (!clean.matches("[+-]?\\d+")) {
            throw error("invalid value " + tok + (tok.chars().allMatch(Character::isLetter) ? " (strings need quotes)" : ""));
        }
        try {
            return Long.parseLong(clean);
        } catch (NumberFormatException e) {
            throw error("integer out of range: " + tok);
        }
    }

    /** Removes digit separators; each underscore must sit between two digits. */
    private String underscores(String s, String tok) {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == '_' && (i == 0 || i == s.length() - 1 || !Character.isLetterOrDigit(s.charAt(i - 1))
                    || !Character.isLetterOrDigit(s.charAt(i + 1)))) {
                throw error("misplaced underscore in " + tok);
            }
        }
        return s.replace("_", "");
    }

    private List<Object> array(java.util.Set<Object> frozen) {
        pos++; // [
        List<Object> list = new ArrayList<>();
        while (true) {
            skipWsCommentsNewlines();
            if (eof()) {
                throw error("unterminated array");
            }
            if (peek() == ']') {
                pos++;
                frozen.add(list);
                return list;
            }
            list.add(value(frozen));
            skipWsCommentsNewlines();
            if (eof()) {
                throw error("unterminated array");
            }
            if (peek() == ',') {
                pos++;
            } else if (peek() != ']') {
                throw error("expected ',' or ']' in array");
            }
        }
    }

    private Map<String, Object> inlineTable(java.util.Set<Object> frozen) {
        pos++; // {
        Map<String, Object> table = new LinkedHashMap<>();
        skipWs();
        if (!eof() && peek() == '}') {
            pos++;
            frozen.add(table);
            return table;
        }
        while (true) {
            List<String> key = key();
            skipWs();
            if (eof() || peek() != '=') {
                throw error("expected '=' in inline table");
            }
            pos++;
            skipWs();
            Object v = value(frozen);
            Map<String, Object> target = descend(table, key.subList(0, key.size() - 1), java.util.Set.of());
            String last = key.get(key.size() - 1);
            if (target.containsKey(last)) {
                throw error("key " + String.join(".", key) + " is defined twice");
            }
            target.put(last, v);
            skipWs();
            if (eof()) {
                throw error("unterminated inline table");
            }
            char c = peek();
            pos++;
            if (c == '}') {
                frozen.add(table);
                return table;
            }
            if (c != ',') {
                throw error("expected ',' or '}' in inline table");
            }
            skipWs();
        }
    }

    // ---------------------------------------------------------------- strings

    private String basicString() {
        pos++; // "
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (eof() || peek() == '\n') {
                throw error("unterminated string");
            }
            char c = src.charAt(pos++);
            if (c == '"') {
                return sb.toString();
            }
            if (c == '\\') {
                escape(sb);
            } else {
                checkControl(c);
                sb.append(c);
            }
        }
    }

    private String multiLineBasicString() {
        openMultiLine();
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (eof()) {
                throw error("unterminated multi-line string");
            }
            if (src.startsWith("\"\"\"", pos)) {
                int extra = extraQuotes('"');
                sb.append("\"".repeat(extra));
                pos += 3 + extra;
                return sb.toString();
            }
            char c = src.charAt(pos++);
            if (c == '\\') {
                // line-ending backslash: trim whitespace and newlines up to the next content
                int save = pos;
                while (!eof() && (peek() == ' ' || peek() == '\t')) {
                    pos++;
                }
                if (!eof() && (peek() == '\n' || src.startsWith("\r\n", pos))) {
                    while (!eof() && Character.isWhitespace(peek())) {
                        if (peek() == '\n') {
                            line++;
                        }
                        pos++;
                    }
                } else {
                    pos = save;
                    escape(sb);
                }
            } else {
                if (c == '\n') {
                    line++;
                } else if (c != '\r') {
                    checkControl(c);
                }
                sb.append(c);
            }
        }
    }

    /** Skips a multi-line string's opening delimiter and the newline right after it (not part of the value). */
    private void openMultiLine() {
        pos += 3;
        newline();
    }

    /** At a closing triple quote: how many quotes before it (up to two) still belong to the content. */
    private int extraQuotes(char q) {
        String four = String.valueOf(q).repeat(4);
        int extra = 0;
        while (extra < 2 && src.startsWith(four, pos + extra)) {
            extra++;
        }
        return extra;
    }

    private String literalString() {
        pos++; // '
        int start = pos;
        while (true) {
            if (eof() || peek() == '\n') {
                throw error("unterminated literal string");
            }
            if (peek() == '\'') {
                String s = src.substring(start, pos);
                pos++;
                return s;
            }
            checkControl(peek());
            pos++;
        }
    }

    private String multiLineLiteralString() {
        openMultiLine();
        int start = pos;
        while (true) {
            if (eof()) {
                throw error("unterminated multi-line literal string");
            }
            if (src.startsWith("'''", pos)) {
                int extra = extraQuotes('\'');
                String s = src.substring(start, pos + extra);
                pos += 3 + extra;
                return s;
            }
            if (peek() == '\n') {
                line++;
            }
            pos++;
        }
    }

    private void escape(StringBuilder sb) {
        if (eof()) {
            throw error("unterminated escape");
        }
        char e = src.charAt(pos++);
        switch (e) {
            case 'b' -> sb.append('\b');
            case 't' -> sb.append('\t');
            case 'n' -> sb.append('\n');
            case 'f' -> sb.append('\f');
            case 'r' -> sb.append('\r');
            case 'e' -> sb.append('\u001B');
            case '"' -> sb.append('"');
            case '\\' -> sb.append('\\');
            case 'u' -> sb.appendCodePoint(hex(4));
            case 'U' -> sb.appendCodePoint(hex(8));
            default -> throw error("invalid escape \\" + e
                    + " (for Windows paths use a literal string '...' or double the backslashes)");
        }
    }

    private int hex(int digits) {
        if (pos + digits > src.length()) {
            throw error("truncated unicode escape");
        }
        String h = src.substring(pos, pos + digits);
        pos += digits;
        try {
            int cp = Integer.parseUnsignedInt(h, 16);
            if (!Character.isValidCodePoint(cp) || (cp >= 0xD800 && cp <= 0xDFFF)) {
                throw error("invalid unicode escape " + h);
            }
            return cp;
        } catch (NumberFormatException ex) {
            throw error("invalid unicode escape " + h);
        }
    }

    private void checkControl(char c) {
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            throw error("control character U+" + String.format("%04X", (int) c) + " in a string");
        }
    }

    // ---------------------------------------------------------------- whitespace

    private boolean eof() {
        return pos >= src.length();
    }

    private char peek() {
        return src.charAt(pos);
    }

    private void skipWs() {
        while (!eof() && (peek() == ' ' || peek() == '\t')) {
            pos++;
        }
    }

    private void skipComment() {
        if (!eof() && peek() == '#') {
            while (!eof() && peek() != '\n') {
                pos++;
            }
        }
    }

    private void skipWsCommentsNewlines() {
        do {
            skipWs();
            skipComment();
        } while (newline());
    }

    /** Consumes one line break (LF or CRLF) if one is next. */
    private boolean newline() {
        int n = !eof() && peek() == '\n' ? 1 : src.startsWith("\r\n", pos) ? 2 : 0;
        if (n == 0) {
            return false;
        }
        pos += n;
        line++;
        return true;
    }

    /** After a key/value pair or table header only whitespace and a comment may follow on the line. */
    private void endOfLine() {
        skipWs();
        skipComment();
        if (!eof() && !newline()) {
            throw error("unexpected text after the value: '" + src.substring(pos, Math.min(src.length(), pos + 20)).strip() + "'");
        }
    }
}
