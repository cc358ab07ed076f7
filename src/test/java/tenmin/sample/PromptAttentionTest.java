package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.sample.PromptAttention.Piece;

/**
 * Expected pieces are worked out by hand from A1111's documented rules: {@code (x)} ×1.1, {@code [x]} ÷1.1,
 * {@code (x:w)} ×w, brackets multiply from where they open, unclosed ones apply to the end, equal weights
 * merge (the docstring examples of {@code parse_prompt_attention} are the first cases).
 */
class PromptAttentionTest {

    private static void assertPieces(String prompt, Object... textWeight) {
        List<Piece> got = PromptAttention.parse(prompt);
        assertEquals(textWeight.length / 2, got.size(), () -> prompt + " -> " + got);
        for (int i = 0; i < got.size(); i++) {
            String text = (String) textWeight[2 * i];
            double weight = ((Number) textWeight[2 * i + 1]).doubleValue();
            int k = i;
            assertEquals(text, got.get(i).text(), () -> prompt + " piece " + k + " of " + got);
            assertEquals(weight, got.get(i).weight(), 1e-12, () -> prompt + " piece " + k + " of " + got);
        }
    }

    @Test
    void documentedExamples() {
        assertPieces("normal text", "normal text", 1.0);
        assertPieces("an (important) word", "an ", 1.0, "important", 1.1, " word", 1.0);
        assertPieces("(unbalanced", "unbalanced", 1.1);
        assertPieces("\\(literal\\]", "(literal]", 1.0);
        assertPieces("(unnecessary)(parens)", "unnecessaryparens", 1.1);
        // the first '(' never closes, so everything after it also gets x1.1
        assertPieces("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
                "a ", 1.0,
                "house", 1.3 * 1.1 * 1.1,
                " ", 1.1,
                "on", 1.1 / 1.1,
                " a ", 1.1,
                "hill", 0.5 * 1.1,
                ", sun, ", 1.1,
                "sky", 1.1 * 1.1 * 1.1 * 1.1,
                ".", 1.1);
    }

    @Test
    void typicalTagPrompt() {
        assertPieces("(masterpiece:1.2), (best quality), [worst quality], ((detailed eyes)), {blue hair}, (red:0.8)",
                "masterpiece", 1.2,
                ", ", 1.0,
                "best quality", 1.1,
                ", ", 1.0,
                "worst quality", 1 / 1.1,
                ", ", 1.0,
                "detailed eyes", 1.1 * 1.1,
                ", {blue hair}, ", 1.0, // curly braces mean nothing to A1111
                "red", 0.8);
    }

    @Test
    void nestingMultiplies() {
        assertPieces("((a:1.5) b)", "a", 1.5 * 1.1, " b", 1.1);
        assertPieces("[[a]] b", "a", 1 / 1.1 / 1.1, " b", 1.0);
        assertPieces("([a] (b:2))", "a", 1.0, " ", 1.1, "b", 2 * 1.1);
        assertPieces("(a [b (c:0.5)])", "a ", 1.1, "b ", 1.1 / 1.1, "c", 0.5 / 1.1 * 1.1);
        // spaces around the weight are allowed, signs and leading dots too
        assertPieces("(word: 1.3 ) (x:.5) (y:+2)", "word", 1.3, " ", 1.0, "x", 0.5, " ", 1.0, "y", 2.0);
        assertPieces("(neg:-1)", "neg", -1.0);
    }

    @Test
    void escapesAreLiteral() {
        assertPieces("\\(a\\) \\[b\\] \\\\ c", "(a) [b] \\ c", 1.0);
        // a backslash before anything else is dropped
        assertPieces("c\\d", "cd", 1.0);
        assertPieces("(\\(x\\))", "(x)", 1.1);
    }

    @Test
    void unbalancedBracketsAsA1111() {
        // closers without openers are text
        assertPieces("a) b]", "a) b]", 1.0);
        // a weight without an opening bracket is text too
        assertPieces("a:1.2)", "a:1.2)", 1.0);
        // an unclosed '(' with a colon but no ')' : the colon and number are text, x1.1 to the end
        assertPieces("(a:0.5", "a:0.5", 1.1);
        // a weight needs round brackets: in square ones the colon and number stay text
        assertPieces("[a:1.5]", "a:1.5", 1 / 1.1);
        // unclosed '[' inside an unclosed '(' : both apply to the end; 1.1 * (1/1.1) is exactly 1.0 in
        // binary64, so the pieces merge
        assertPieces("x ([y", "x y", 1.0);
        assertPieces("x [(y", "x y", 1.0);
        assertPieces("((a)", "a", 1.1 * 1.1);
        // colons that are not weights
        assertPieces("(a:b)", "a:b", 1.1);
        assertPieces("1girl :d", "1girl :d", 1.0);
    }

    @Test
    void breakSplitsWholeWords() {
        assertPieces("a BREAK b", "a", 1.0, "BREAK", -1.0, "b", 1.0);
        assertTrue(PromptAttention.parse("a BREAK b").get(1).isBreak());
        assertPieces("a\n BREAK\tb", "a", 1.0, "BREAK", -1.0, "b", 1.0);
        assertPieces("a,BREAK,b", "a,", 1.0, "BREAK", -1.0, ",b", 1.0);
        assertPieces("BREAK", "", 1.0, "BREAK", -1.0, "", 1.0);
        // not whole words, or not upper case: text
        assertPieces("aBREAK b_BREAK BREAKs break", "aBREAK b_BREAK BREAKs break", 1.0);
        // a weighted piece next to BREAK keeps its weight; the space before BREAK is eaten, leaving ""
        assertPieces("(a) BREAK b", "a", 1.1, "", 1.0, "BREAK", -1.0, "b", 1.0);
        // inside brackets the marker's weight is multiplied and it is no longer a break (A1111 quirk)
        List<Piece> inside = PromptAttention.parse("(a BREAK b)");
        assertEquals(3, inside.size());
        assertEquals(-1.1, inside.get(1).weight(), 1e-12);
        assertFalse(inside.get(1).isBreak());
        // kohya's parser has no BREAK
        assertEquals(List.of(new Piece("a BREAK b", 1.0)), PromptAttention.parse("a BREAK b", false));
    }

    @Test
    void emptyPromptIsOneEmptyPiece() {
        assertPieces("", "", 1.0);
        assertPieces("()", "", 1.0);
    }

    @Test
    void malformedWeightIsAnInputError() {
        InputException e = assertThrows(InputException.class, () -> PromptAttention.parse("a (b:1.2.3) c"));
        assertTrue(e.getMessage().contains("1.2.3"), e.getMessage());
        assertThrows(InputException.class, () -> PromptAttention.parse("(b:.)"));
    }
}
