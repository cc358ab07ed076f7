package tenmin.sample;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.core.InputException;
import tenmin.core.PyText;

/**
 * Parses the A1111 attention syntax of a prompt into (text, weight) pieces, as the web UI's
 * {@code prompt_parser.parse_prompt_attention} does (A1111 1.7+ rules, which kohya's sample prompts also use
 * without {@code BREAK}):
 *
 * <ul>
 * <li>{@code (text)} multiplies the weight of everything inside by 1.1, {@code [text]} divides it by 1.1;
 *     brackets nest and multiply ({@code ((a))} = 1.21).
 * <li>{@code (text:1.5)} multiplies by the given number ({@code : 1.5 )} with spaces also works); a weight
 *     only works with round brackets.
 * <li>{@code \(}, {@code \)}, {@code \[}, {@code \]}, {@code \\} are the literal characters; any other
 *     backslash is dropped ({@code a\b} reads {@code ab}).
 * <li>A bracket left open applies its factor from where it opened to the end of the prompt; a closing
 *     bracket without an opening one is kept as literal text.
 * <li>{@code BREAK} (a whole word, upper-case) ends the current 75-token chunk; it becomes the piece
 *     {@code ("BREAK", -1)}, and the whitespace around it is dropped.
 * <li>Adjacent pieces with equal weight are joined; an empty prompt gives {@code [("", 1.0)]}.
 * </ul>
 *
 * <p>A weight that is not a number, for example {@code (a:1.2.3)}, is an {@link InputException} (A1111 fails
 * on it too).
 */
public final class PromptAttention {
    private PromptAttention() {
    }

    /** One run of prompt text with its attention multiplier; {@link #isBreak()} marks a chunk break. */
    public record Piece(String text, double weight) {
        /** The {@code BREAK} marker: text "BREAK" with weight exactly -1 (brackets around it unmake it, as in A1111). */
        public boolean isBreak() {
            return weight == -1.0 && text.equals("BREAK");
        }
    }

    /** Factor of {@code (…)}. */
    public static final double ROUND_MULTIPLIER = 1.1;
    /** Factor of {@code […]}. */
    public static final double SQUARE_MULTIPLIER = 1 / 1.1;

    /**
     * A1111's {@code re_attention}: escapes, brackets, {@code :weight)}, a run of plain text, a lone colon.
     * Python's {@code \s} and {@code \d} are Unicode-aware, hence UNICODE_CHARACTER_CLASS.
     */
    private static final Pattern TOKEN = Pattern.compile(
            "\\\\\\(|\\\\\\)|\\\\\\[|\\\\]|\\\\\\\\|\\\\|\\(|\\[|:\\s*([+-]?[.\\d]+)\\s*\\)|\\)|]|[^\\\\()\\[\\]:]+|:",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** Parses with {@code BREAK} recognised (A1111). */
    public static List<Piece> parse(String prompt) {
        return parse(prompt, true);
    }

    /**
     * Parses {@code prompt}; with {@code breakKeyword} false, {@code BREAK} is ordinary text (kohya's
     * long-prompt pipeline, which predates it).
     */
    public static List<Piece> parse(String prompt, boolean breakKeyword) {
        List<String> texts = new ArrayList<>();
        List<Double> weights = new ArrayList<>();
        List<Integer> round = new ArrayList<>();
        List<Integer> square = new ArrayList<>();
        Matcher m = TOKEN.matcher(prompt);
        while (m.find()) {
            String text = m.group();
            String weight = m.group(1);
            if (text.startsWith("\\")) {
                texts.add(text.substring(1));
                weights.add(1.0);
            } else if (text.equals("(")) {
                round.add(texts.size());
            } else if (text.equals("[")) {
                square.add(texts.size());
            } else if (weight != null && !round.isEmpty()) {
                multiplyFrom(weights, round.removeLast(), parseWeight(weight, prompt));
            } else if (text.equals(")") && !round.isEmpty()) {
                multiplyFrom(weights, round.removeLast(), ROUND_MULTIPLIER);
            } else if (text.equals("]") && !square.isEmpty()) {
                multiplyFrom(weights, square.removeLast(), SQUARE_MULTIPLIER);
            } else {
                List<String> parts = breakKeyword ? splitAtBreak(text) : List.of(text);
                for (int i = 0; i < parts.size(); i++) {
                    if (i > 0) {
                        texts.add("BREAK");
                        weights.add(-1.0);
                    }
                    texts.add(parts.get(i));
                    weights.add(1.0);
                }
            }
        }
        // brackets left open apply from their position to the end, innermost (earliest pushed) first
        for (int pos : round) {
            multiplyFrom(weights, pos, ROUND_MULTIPLIER);
        }
        for (int pos : square) {
            multiplyFrom(weights, pos, SQUARE_MULTIPLIER);
        }
        if (texts.isEmpty()) {
            return List.of(new Piece("", 1.0));
        }
        List<Piece> out = new ArrayList<>();
        StringBuilder run = new StringBuilder(texts.getFirst());
        double runWeight = weights.getFirst();
        for (int i = 1; i < texts.size(); i++) {
            if (weights.get(i) == runWeight) {
                run.append(texts.get(i));
            } else {
                out.add(new Piece(run.toString(), runWeight));
                run.setLength(0);
                run.append(texts.get(i));
                runWeight = weights.get(i);
            }
        }
        out.add(new Piece(run.toString(), runWeight));
        return List.copyOf(out);
    }

    private static void multiplyFrom(List<Double> weights, int start, double factor) {
        for (int p = start; p < weights.size(); p++) {
            weights.set(p, weights.get(p) * factor);
        }
    }

    /** Python {@code float(s)} on {@code [+-]?[.\d]+} (any Unicode decimal digit). */
    private static double parseWeight(String s, String prompt) {
        StringBuilder ascii = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            ascii.append(Character.isDigit(cp) ? (char) ('0' + Character.digit(cp, 10)) : (char) cp);
        }
        try {
            return Double.parseDouble(ascii.toString()); // the pattern leaves only sign, digits and dots
        } catch (NumberFormatException e) {
            throw new InputException("prompt: attention weight '" + s + "' is not a number in: " + abbreviate(prompt));
        }
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "…" : s;
    }

    /** {@code re.split(r"\s*\bBREAK\b\s*", text)}: BREAK as a whole word, surrounding whitespace removed. */
    static List<String> splitAtBreak(String text) {
        List<String> parts = new ArrayList<>();
        int segStart = 0;
        int from = 0;
        while (true) {
            int k = text.indexOf("BREAK", from);
            if (k < 0) {
                break;
            }
            int end = k + 5;
            boolean wordBefore = k > 0 && PyText.isWord(text.codePointBefore(k));
            boolean wordAfter = end < text.length() && PyText.isWord(text.codePointAt(end));
            if (wordBefore || wordAfter) {
                from = k + 1;
                continue;
            }
            int start = k;
            while (start > segStart && PyText.isSpace(text.charAt(start - 1))) {
                start--;
            }
            while (end < text.length() && PyText.isSpace(text.charAt(end))) {
                end++;
            }
            parts.add(text.substring(segStart, start));
            segStart = end;
            from = end;
        }
        parts.add(text.substring(segStart));
        return parts;
    }
}
