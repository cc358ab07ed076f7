package tenmin.formats;

import java.io.IOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;

import tenmin.core.PyJson;

/**
 * A JSON document read with Jackson's streaming parser into plain Java values: {@code Map<String, Object>}
 * (insertion order), {@code List<Object>}, {@code String}, {@code Long} (integers that fit), {@link BigInteger},
 * {@code Double}, {@code Boolean} and {@link #NULL}. For the safetensors header, which every tool reads first:
 * Jackson's object mapper costs ~0.1-0.2 s of class loading and initialisation on a cold start, the streaming
 * parser a fraction of that, with the same tokenizer and its checks (duplicate keys rejected, the source in
 * error locations). Unlike the mapper's {@code readTree}, anything but whitespace after the document is an error,
 * as in the reference reader.
 */
final class JsonTree {
    /** The JSON {@code null}. */
    static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
            .build();

    private JsonTree() {
    }

    /** Parses one document; null for an empty text. Throws Jackson's exception for malformed JSON. */
    static Object parse(String text) throws IOException {
        try (JsonParser p = FACTORY.createParser(text)) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return null;
            }
            Object root = value(p, t);
            JsonToken after = p.nextToken();
            if (after != null) {
                throw new com.fasterxml.jackson.core.JsonParseException(p, "trailing content after the JSON document: "
                        + after);
            }
            return root;
        }
    }

    /**
     * A fast path for well-formed, simple documents such as safetensors headers: the same tree as
     * {@link #parse}, or null whenever the text holds anything this small scanner leaves to Jackson (which then
     * parses it, or reports the error with its location): numbers other than plain integers that fit a long,
     * surrogate escapes, duplicate keys, any syntax error. On a cold JVM it reads a 365 KB checkpoint header in
     * a fraction of Jackson's time (no parser set-up, no name canonicalisation, substrings instead of buffers).
     */
    static Object parseFast(String text) {
        FastScanner s = new FastScanner(text);
        try {
            s.skipWhitespace();
            if (s.pos == text.length()) {
                return null; // empty: let parse() decide
            }
            Object root = s.value(0);
            s.skipWhitespace();
            return s.pos == text.length() ? root : null;
        } catch (Fallback e) {
            return null;
        }
    }

    /** Thrown inside the fast scanner for anything it leaves to Jackson. */
    private static final class Fallback extends RuntimeException {
        private static final long serialVersionUID = 1L;
        static final Fallback INSTANCE = new Fallback();

        private Fallback() {
            super(null, null, false, false);
        }
    }

    private static final class FastScanner {
        /** Deeper documents go to Jackson (which has its own nesting limit and message). */
        private static final int MAX_DEPTH = 64;
        /** Longer names and strings go to Jackson, which refuses them (its default StreamReadConstraints). */
        private static final int MAX_NAME_LENGTH = 50_000;
        private static final int MAX_STRING_LENGTH = 20_000_000;
        private final String text;
        private int pos;

        FastScanner(String text) {
            this.text = text;
        }

        void skipWhitespace() {
            int n = text.length();
            while (pos < n) {
                char c = text.charAt(pos);
                if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
                    return;
                }
                pos++;
            }
        }

        private char next() {
            if (pos >= text.length()) {
                throw Fallback.INSTANCE;
            }
            return text.charAt(pos++);
        }

        private void expect(char c) {
            skipWhitespace();
            if (next() != c) {
                throw Fallback.INSTANCE;
            }
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) {
                throw Fallback.INSTANCE;
            }
            skipWhitespace();
            char c = next();
            switch (c) {
                case '{' -> {
                    Map<String, Object> m = new LinkedHashMap<>();
                    skipWhitespace();
                    if (pos < text.length() && text.charAt(pos) == '}') {
                        pos++;
                        return m;
                    }
                    while (true) {
                        expect('"');
                        String key = string();
                        if (key.length() > MAX_NAME_LENGTH) {
                            throw Fallback.INSTANCE;
                        }
                        expect(':');
                        if (m.put(key, value(depth + 1)) != null) {
                            throw Fallback.INSTANCE; // duplicate key: Jackson reports it
                        }
                        skipWhitespace();
                        char d = next();
                        if (d == '}') {
                            return m;
                        }
                        if (d != ',') {
                            throw Fallback.INSTANCE;
                        }
                    }
                }
                case '[' -> {
                    List<Object> l = new ArrayList<>();
                    skipWhitespace();
                    if (pos < text.length() && text.charAt(pos) == ']') {
                        pos++;
                        return l;
                    }
                    while (true) {
                        l.add(value(depth + 1));
                        skipWhitespace();
                        char d = next();
                        if (d == ']') {
                            return l;
                        }
                        if (d != ',') {
                            throw Fallback.INSTANCE;
                        }
                    }
                }
                case '"' -> {
                    return string();
                }
                case 't' -> {
                    literal("rue");
                    return Boolean.TRUE;
                }
                case 'f' -> {
                    literal("alse");
                    return Boolean.FALSE;
                }
                case 'n' -> {
                    literal("ull");
                    return NULL;
                }
                default -> {
                    pos--;
                    return integer();
                }
            }
        }

        private void literal(String rest) {
            if (!text.startsWith(rest, pos)) {
                throw Fallback.INSTANCE;
            }
            pos += rest.length();
        }

        /** A plain integer that fits a long (no sign on zero, no leading zeros, no fraction or exponent). */
        private Long integer() {
            int start = pos;
            boolean negative = pos < text.length() && text.charAt(pos) == '-';
            if (negative) {
                pos++;
            }
            int digits = pos;
            while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
                pos++;
            }
            int count = pos - digits;
            if (count == 0 || count > 18 || (text.charAt(digits) == '0' && (count > 1 || negative))) {
                throw Fallback.INSTANCE; // not a number, too long for this path, -0 or leading zeros
            }
            if (pos < text.length()) {
                char c = text.charAt(pos);
                if (c == '.' || c == 'e' || c == 'E') {
                    throw Fallback.INSTANCE;
                }
            }
            return Long.parseLong(text, start, pos, 10);
        }

        /** The rest of a string whose opening quote was read. */
        private String string() {
            int start = pos;
            int n = text.length();
            while (pos < n) {
                char c = text.charAt(pos);
                if (c == '"') {
                    if (pos - start > MAX_STRING_LENGTH) {
                        throw Fallback.INSTANCE;
                    }
                    return text.substring(start, pos++);
                }
                if (c == '\\') {
                    return escaped(start);
                }
                if (c < 0x20) {
                    throw Fallback.INSTANCE; // a raw control character: invalid JSON
                }
                pos++;
            }
            throw Fallback.INSTANCE;
        }

        private String escaped(int start) {
            StringBuilder sb = new StringBuilder(text.length() - start < 64 ? 16 : 64);
            sb.append(text, start, pos);
            while (true) {
                char c = next();
                if (c == '"') {
                    if (sb.length() > MAX_STRING_LENGTH) {
                        throw Fallback.INSTANCE;
                    }
                    return sb.toString();
                }
                if (c < 0x20) {
                    throw Fallback.INSTANCE;
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                char e = next();
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        if (pos + 4 > text.length()) {
                            throw Fallback.INSTANCE;
                        }
                        int v = 0;
                        for (int i = 0; i < 4; i++) {
                            char h = text.charAt(pos++);
                            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                    : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                            if (d < 0) {
                                throw Fallback.INSTANCE;
                            }
                            v = v * 16 + d;
                        }
                        if (Character.isSurrogate((char) v)) {
                            throw Fallback.INSTANCE; // pairs and lone halves: as Jackson decides
                        }
                        sb.append((char) v);
                    }
                    default -> throw Fallback.INSTANCE;
                }
            }
        }
    }

    private static Object value(JsonParser p, JsonToken t) throws IOException {
        switch (t) {
            case START_OBJECT -> {
                Map<String, Object> m = new LinkedHashMap<>();
                for (JsonToken k = p.nextToken(); k != JsonToken.END_OBJECT; k = p.nextToken()) {
                    String name = p.currentName();
                    m.put(name, value(p, p.nextToken()));
                }
                return m;
            }
            case START_ARRAY -> {
                List<Object> l = new ArrayList<>();
                for (JsonToken e = p.nextToken(); e != JsonToken.END_ARRAY; e = p.nextToken()) {
                    l.add(value(p, e));
                }
                return l;
            }
            case VALUE_STRING -> {
                return p.getText();
            }
            case VALUE_NUMBER_INT -> {
                return p.getNumberType() == JsonParser.NumberType.BIG_INTEGER ? p.getBigIntegerValue() : p.getLongValue();
            }
            case VALUE_NUMBER_FLOAT -> {
                return p.getDoubleValue();
            }
            case VALUE_TRUE -> {
                return Boolean.TRUE;
            }
            case VALUE_FALSE -> {
                return Boolean.FALSE;
            }
            case VALUE_NULL -> {
                return NULL;
            }
            default -> throw new com.fasterxml.jackson.core.JsonParseException(p, "unexpected token " + t);
        }
    }

    /** Compact JSON text of a parsed value, for messages. */
    static String text(Object v) {
        StringBuilder sb = new StringBuilder();
        write(sb, v);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v) {
        if (v instanceof String s) {
            PyJson.appendString(sb, s, false);
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                PyJson.appendString(sb, (String) e.getKey(), false);
                sb.append(':');
                write(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof List<?> l) {
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                write(sb, l.get(i));
            }
            sb.append(']');
        } else {
            sb.append(v);
        }
    }
}
