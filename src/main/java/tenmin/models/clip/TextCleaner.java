package tenmin.models.clip;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.core.PyText;

/**
 * The text clean-up that openai's {@code SimpleTokenizer.encode} runs before BPE: {@code ftfy.fix_text}
 * (ftfy 6.1.1 defaults), {@code html.unescape} twice, strip, whitespace collapse and lower-casing
 * (fixtures README quirk Q1).
 *
 * <p>Of {@code ftfy.fix_text} this implements, in ftfy's order and repeated to a fixed point per line:
 * HTML entity decoding (only when the text has no {@code <}, including ftfy's upper-cased entity names
 * such as {@code &EACUTE;}), C1 controls read as Windows-1252, Latin ligatures ({@code ﬁ → fi}), full-
 * and half-width forms ({@code ＡＢＣ → ABC}, ideographic space → space), curly quotes → straight,
 * line breaks → {@code \n}, lone surrogates → U+FFFD, ANSI terminal escapes removed, control characters
 * removed, NFC. What it leaves out is ftfy's mojibake repair ({@code fix_encoding}: text that was
 * UTF-8 decoded as Latin-1, such as {@code cafÃ©}); such text is tokenized as it stands.
 *
 * <p>Immutable and thread-safe; the HTML entity table is loaded once per instance.
 */
final class TextCleaner {
    /** ftfy {@code HTML_ENTITY_RE}. */
    private static final Pattern FTFY_ENTITY = Pattern.compile("&#?[0-9A-Za-z]{1,24};");
    /** Python {@code html._charref}: numeric references and up to 32 name characters, {@code ;} optional. */
    private static final Pattern PY_CHARREF =
            Pattern.compile("&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\\t\\n\\f <&#;]{1,32};?)");
    /** ftfy {@code ANSI_RE} (Python's {@code \d} is any Unicode digit). */
    private static final Pattern ANSI_ESCAPE = Pattern.compile("\u001b\\[((?:\\p{Nd}|;)*)([a-zA-Z])");
    /** Python's {@code html._invalid_charrefs}: 0x80-0x9F as Windows-1252, plus NUL and CR. */
    private static final String CP1252_80_9F =
            "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f"
            + "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

    /** html5 name (with or without ';') to replacement text, as Python's {@code html.entities.html5}. */
    private final Map<String, String> html5;
    /** ftfy {@code HTML_ENTITIES}: "&name;" to text, plus the upper-cased names ftfy accepts. */
    private final Map<String, String> ftfyEntities;

    TextCleaner(Map<String, String> html5) {
        this.html5 = Map.copyOf(html5);
        Map<String, String> ftfy = new HashMap<>();
        for (Map.Entry<String, String> e : html5.entrySet()) {
            String name = e.getKey();
            if (!name.endsWith(";")) {
                continue;
            }
            ftfy.put("&" + name, e.getValue());
        }
        for (Map.Entry<String, String> e : html5.entrySet()) {
            String name = e.getKey();
            if (!name.endsWith(";") || !name.equals(name.toLowerCase(Locale.ROOT))) {
                continue;
            }
            String upper = "&" + name.toUpperCase(Locale.ROOT);
            // ftfy adds the upper-cased name only where html.unescape leaves it alone
            if (htmlUnescape(upper).equals(upper)) {
                ftfy.put(upper, e.getValue().toUpperCase(Locale.ROOT));
            }
        }
        this.ftfyEntities = Map.copyOf(ftfy);
    }

    /** Loads the HTML5 entity table shipped next to this class. */
    static TextCleaner load() {
        try (InputStream in = TextCleaner.class.getResourceAsStream("html5-entities.txt")) {
            if (in == null) {
                throw new IllegalStateException("resource tenmin/models/clip/html5-entities.txt missing from the build");
            }
            Map<String, String> table = new HashMap<>();
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                int tab = line.indexOf('\t');
                StringBuilder value = new StringBuilder();
                for (String hex : line.substring(tab + 1).split(" ")) {
                    value.appendCodePoint(Integer.parseInt(hex, 16));
                }
                table.put(line.substring(0, tab), value.toString());
            }
            return new TextCleaner(table);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * {@code whitespace_clean(basic_clean(text)).lower()} of openai's SimpleTokenizer: the exact string
     * the CLIP regex then splits.
     */
    String clean(String text) {
        String s = fixText(text);
        s = htmlUnescape(htmlUnescape(s));
        return PyText.collapseWhitespace(s).toLowerCase(Locale.ROOT);
    }

    // ---- ftfy.fix_text -------------------------------------------------------------------------------

    /** ftfy 6.1.1 {@code fix_text} with default settings, minus mojibake repair (see class comment). */
    String fixText(String text) {
        StringBuilder out = new StringBuilder(text.length());
        boolean unescape = true;
        int pos = 0;
        while (pos < text.length()) {
            int end = text.indexOf('\n', pos) + 1;
            if (end == 0) {
                end = text.length();
            }
            String segment = text.substring(pos, end);
            // once a line contains '<', HTML is not unescaped from there on (ftfy replaces its config)
            if (segment.indexOf('<') >= 0) {
                unescape = false;
            }
            out.append(fixSegment(segment, unescape));
            pos = end;
        }
        return out.toString();
    }

    private String fixSegment(String text, boolean unescape) {
        for (int round = 0; round < 100; round++) {
            String orig = text;
            if (unescape) {
                text = ftfyUnescape(text);
            }
            text = fixC1Controls(text);
            text = fixLigaturesAndWidth(text);
            text = uncurlQuotes(text);
            text = fixLineBreaks(text);
            text = fixSurrogates(text);
            text = ANSI_ESCAPE.matcher(text).replaceAll("");
            text = removeControlChars(text);
            text = Normalizer.normalize(text, Normalizer.Form.NFC);
            if (text.equals(orig)) {
                return text;
            }
        }
        return text;
    }

    private String ftfyUnescape(String text) {
        if (text.indexOf('&') < 0) {
            return text;
        }
        Matcher m = FTFY_ENTITY.matcher(text);
        return m.replaceAll(r -> {
            String entity = r.group();
            String known = ftfyEntities.get(entity);
            if (known != null) {
                return Matcher.quoteReplacement(known);
            }
            if (entity.startsWith("&#")) {
                String unescaped = htmlUnescape(entity);
                return Matcher.quoteReplacement(unescaped.indexOf(';') >= 0 ? entity : unescaped);
            }
            return Matcher.quoteReplacement(entity);
        });
    }

    private static String fixC1Controls(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 0x80 && c <= 0x9f) {
                if (sb == null) {
                    sb = new StringBuilder(text.substring(0, i));
                }
                sb.append(CP1252_80_9F.charAt(c - 0x80)); // ftfy's sloppy-windows-1252 keeps the 5 undefined bytes
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    /** ftfy {@code fix_latin_ligatures} then {@code fix_character_width}. */
    private static String fixLigaturesAndWidth(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String rep = ligature(c);
            if (rep == null && (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF))) {
                rep = c == 0x3000 ? " " : Normalizer.normalize(String.valueOf(c), Normalizer.Form.NFKC);
                if (rep.equals(String.valueOf(c))) {
                    rep = null;
                }
            }
            if (rep != null && sb == null) {
                sb = new StringBuilder(text.substring(0, i));
            }
            if (sb != null) {
                if (rep != null) {
                    sb.append(rep);
                } else {
                    sb.append(c);
                }
            }
        }
        return sb == null ? text : sb.toString();
    }

    /** ftfy {@code LIGATURES}. */
    private static String ligature(char c) {
        return switch (c) {
            case '\u0132' -> "IJ";
            case '\u0133' -> "ij";
            case '\u0149' -> "\u02bcn";
            case '\u01f1' -> "DZ";
            case '\u01f2' -> "Dz";
            case '\u01f3' -> "dz";
            case '\u01c4' -> "D\u017d";
            case '\u01c5' -> "D\u017e";
            case '\u01c6' -> "d\u017e";
            case '\u01c7' -> "LJ";
            case '\u01c8' -> "Lj";
            case '\u01c9' -> "lj";
            case '\u01ca' -> "NJ";
            case '\u01cb' -> "Nj";
            case '\u01cc' -> "nj";
            case '\ufb00' -> "ff";
            case '\ufb01' -> "fi";
            case '\ufb02' -> "fl";
            case '\ufb03' -> "ffi";
            case '\ufb04' -> "ffl";
            case '\ufb05' -> "\u017ft";
            case '\ufb06' -> "st";
            default -> null;
        };
    }

    private static String uncurlQuotes(String text) {
        char[] cs = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            char rep = c == '\u02bc' || (c >= '\u2018' && c <= '\u201b') ? '\''
                    : c >= '\u201c' && c <= '\u201f' ? '"' : c;
            if (rep != c) {
                if (cs == null) {
                    cs = text.toCharArray();
                }
                cs[i] = rep;
            }
        }
        return cs == null ? text : new String(cs);
    }

    private static String fixLineBreaks(String text) {
        return text.replace("\r\n", "\n").replace('\r', '\n').replace('\u2028', '\n').replace('\u2029', '\n')
                .replace('\u0085', '\n');
    }

    /** Lone surrogates become U+FFFD (pairs are already whole code points in Java). */
    private static String fixSurrogates(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean lone = false;
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                    if (sb != null) {
                        sb.append(c).append(text.charAt(i + 1));
                    }
                    i++;
                    continue;
                }
                lone = true;
            } else if (Character.isLowSurrogate(c)) {
                lone = true;
            }
            if (lone && sb == null) {
                sb = new StringBuilder(text.substring(0, i));
            }
            if (sb != null) {
                sb.append(lone ? '\ufffd' : c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    /** ftfy {@code CONTROL_CHARS}: C0 controls except tab, LF, FF, CR; DEL; U+206A-206F; BOM; U+FFF9-FFFC. */
    private static boolean isRemovedControl(char c) {
        return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F)
                || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
    }

    private static String removeControlChars(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean drop = isRemovedControl(c);
            if (drop && sb == null) {
                sb = new StringBuilder(text.substring(0, i));
            }
            if (sb != null && !drop) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    // ---- html.unescape ---------------------------------------------------------------------------------

    /** Python's {@code html.unescape}: named references (longest legacy prefix without ';') and numeric ones. */
    String htmlUnescape(String text) {
        if (text.indexOf('&') < 0) {
            return text;
        }
        return PY_CHARREF.matcher(text).replaceAll(r -> Matcher.quoteReplacement(replaceCharref(r.group(1))));
    }

    private String replaceCharref(String s) {
        if (s.charAt(0) == '#') {
            boolean hex = s.length() > 1 && (s.charAt(1) == 'x' || s.charAt(1) == 'X');
            String digits = s.substring(hex ? 2 : 1);
            if (digits.endsWith(";")) {
                digits = digits.substring(0, digits.length() - 1);
            }
            String trimmed = digits.replaceFirst("^0+(?=.)", "");
            long num = trimmed.length() > 8 ? Long.MAX_VALUE : Long.parseLong(trimmed, hex ? 16 : 10);
            if (num >= 0x80 && num <= 0x9F) {
                return String.valueOf(CP1252_80_9F.charAt((int) num - 0x80));
            }
            if (num == 0) {
                return "\ufffd";
            }
            if (num == 0x0D) {
                return "\r";
            }
            if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
                return "\ufffd";
            }
            if (isInvalidCodepoint((int) num)) {
                return "";
            }
            return Character.toString((int) num);
        }
        String known = html5.get(s);
        if (known != null) {
            return known;
        }
        for (int x = s.length() - 1; x > 1; x--) {
            String prefix = html5.get(s.substring(0, x));
            if (prefix != null) {
                return prefix + s.substring(x);
            }
        }
        return "&" + s;
    }

    /** Python's {@code html._invalid_codepoints}. */
    private static boolean isInvalidCodepoint(int cp) {
        return (cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F)
                || (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
    }
}
