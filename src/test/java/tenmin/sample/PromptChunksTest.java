package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.models.clip.ClipTokenizer;
import tenmin.sample.PromptChunks.Chunk;
import tenmin.sample.PromptChunks.Chunking;

/**
 * Chunk layouts worked out by hand from A1111's {@code tokenize_line}: 75 prompt tokens per chunk between
 * BOS and EOS, EOS padding, BREAK, and the comma back-off of 20 tokens. Token ids of single words come
 * from tokenizer-cases.json ("a" = 320, "cat" = 2368) or the vocabulary ("," = 267).
 */
class PromptChunksTest {
    private static final ClipTokenizer TOK = ClipTokenizer.shared();
    private static final int BOS = 49406;
    private static final int EOS = 49407;
    private static final int A = 320;
    private static final int CAT = 2368;
    private static final int COMMA = 267;

    /** Expected 77 ids: BOS, the given tokens, EOS to the end. */
    private static int[] chunk(int... tokens) {
        int[] out = new int[77];
        Arrays.fill(out, EOS);
        out[0] = BOS;
        System.arraycopy(tokens, 0, out, 1, tokens.length);
        return out;
    }

    private static int[] repeat(int token, int times) {
        int[] out = new int[times];
        Arrays.fill(out, token);
        return out;
    }

    private static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) {
            n += p.length;
        }
        int[] out = new int[n];
        int k = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, k, p.length);
            k += p.length;
        }
        return out;
    }

    private static String words(String word, int times) {
        return String.join(" ", java.util.Collections.nCopies(times, word));
    }

    @Test
    void shortPromptIsOneChunk() {
        PromptChunks.Result r = PromptChunks.of("a photo of a cat", TOK);
        assertEquals(1, r.chunks().size());
        assertArrayEquals(chunk(A, 1125, 539, A, CAT), r.chunks().getFirst().tokens());
        assertEquals(5, r.tokenCount());
        assertTrue(r.chunks().getFirst().unweighted());
    }

    @Test
    void weightsFollowTheirTokens() {
        Chunk c = PromptChunks.of("a (cat:1.5) [a]", TOK).chunks().getFirst();
        assertArrayEquals(chunk(A, CAT, A), c.tokens());
        float[] m = c.multipliers();
        assertEquals(1f, m[0]);
        assertEquals(1f, m[1]);
        assertEquals(1.5f, m[2]);
        assertEquals((float) (1 / 1.1), m[3]);
        for (int i = 4; i < 77; i++) {
            assertEquals(1f, m[i], "padding multiplier at " + i);
        }
        assertFalse(c.unweighted());
    }

    @Test
    void encoderTwoPadsWithZeroAfterTheFirstEos() {
        Chunk c = PromptChunks.of("a cat", TOK).chunks().getFirst();
        int[] te2 = new int[77];
        te2[0] = BOS;
        te2[1] = A;
        te2[2] = CAT;
        te2[3] = EOS;
        assertArrayEquals(te2, c.ids(ClipTokenizer.PAD_TE2));
        assertArrayEquals(chunk(A, CAT), c.ids(ClipTokenizer.PAD_TE1));
        // the same layout as the plain tokenizer for prompts that fit
        assertArrayEquals(TOK.idsTe2("a cat"), c.ids(ClipTokenizer.PAD_TE2));
        assertArrayEquals(TOK.idsTe1("a cat"), c.ids(ClipTokenizer.PAD_TE1));
    }

    @Test
    void seventySixTokensMakeTwoChunks() {
        PromptChunks.Result r = PromptChunks.of(words("a", 76), TOK);
        assertEquals(2, r.chunks().size());
        assertArrayEquals(chunk(repeat(A, 75)), r.chunks().get(0).tokens());
        assertArrayEquals(chunk(A), r.chunks().get(1).tokens());
        assertEquals(76, r.tokenCount());
        // exactly 75 fit in one
        assertEquals(1, PromptChunks.of(words("a", 75), TOK).chunks().size());
    }

    @Test
    void commaBackOffMovesTheLastTagToTheNextChunk() {
        // 70 x "a", ",", 10 x "cat": when the chunk is full (70 + 1 + 4) and the next token is not a comma,
        // the 4 tokens after the comma (within 20) move to chunk 2
        String prompt = words("a", 70) + ", " + words("cat", 10);
        PromptChunks.Result r = PromptChunks.of(prompt, TOK);
        assertEquals(2, r.chunks().size());
        assertArrayEquals(chunk(concat(repeat(A, 70), new int[] {COMMA})), r.chunks().get(0).tokens());
        assertArrayEquals(chunk(repeat(CAT, 10)), r.chunks().get(1).tokens());
        assertEquals(75 + 10, r.tokenCount());

        // plain windows (kohya, or back-off 0): 75 then the rest
        PromptChunks.Result plain = PromptChunks.of(prompt, TOK, new Chunking(0, true, 0));
        assertArrayEquals(chunk(concat(repeat(A, 70), new int[] {COMMA}, repeat(CAT, 4))), plain.chunks().get(0).tokens());
        assertArrayEquals(chunk(repeat(CAT, 6)), plain.chunks().get(1).tokens());
    }

    @Test
    void commaFurtherBackThanTheLimitIsIgnored() {
        // 50 x "a", ",", 30 x "cat": 25 tokens after the comma when the chunk fills, more than 20
        String prompt = words("a", 50) + ", " + words("cat", 30);
        PromptChunks.Result r = PromptChunks.of(prompt, TOK);
        assertArrayEquals(chunk(concat(repeat(A, 50), new int[] {COMMA}, repeat(CAT, 24))), r.chunks().get(0).tokens());
        assertArrayEquals(chunk(repeat(CAT, 6)), r.chunks().get(1).tokens());
        // with a larger back-off it moves
        PromptChunks.Result wide = PromptChunks.of(prompt, TOK, new Chunking(30, true, 0));
        assertArrayEquals(chunk(concat(repeat(A, 50), new int[] {COMMA})), wide.chunks().get(0).tokens());
        assertArrayEquals(chunk(repeat(CAT, 30)), wide.chunks().get(1).tokens());
    }

    @Test
    void weightsMoveWithBackedOffTokens() {
        String prompt = words("a", 70) + ", (" + words("cat", 10) + ":1.3)";
        PromptChunks.Result r = PromptChunks.of(prompt, TOK);
        float[] second = r.chunks().get(1).multipliers();
        for (int i = 1; i <= 10; i++) {
            assertEquals(1.3f, second[i], "multiplier of moved token " + i);
        }
        assertEquals(1f, second[11]);
    }

    @Test
    void breakStartsANewChunk() {
        PromptChunks.Result r = PromptChunks.of("a BREAK cat", TOK);
        assertEquals(2, r.chunks().size());
        assertArrayEquals(chunk(A), r.chunks().get(0).tokens());
        assertArrayEquals(chunk(CAT), r.chunks().get(1).tokens());
        assertEquals(75 + 1, r.tokenCount());
        int[][] te2 = r.ids(ClipTokenizer.PAD_TE2);
        assertEquals(2, te2.length);
        assertArrayEquals(new int[] {BOS, CAT, EOS, 0}, Arrays.copyOf(te2[1], 4));
        assertEquals(2, r.multipliers().length);
        // BREAK at the start closes an empty chunk
        PromptChunks.Result lead = PromptChunks.of("BREAK cat", TOK);
        assertEquals(2, lead.chunks().size());
        assertArrayEquals(chunk(), lead.chunks().get(0).tokens());
        // kohya's parser reads BREAK as a word
        PromptChunks.Result kohya = PromptChunks.of("a BREAK cat", TOK, Chunking.KOHYA);
        assertEquals(1, kohya.chunks().size());
        assertArrayEquals(chunk(concat(new int[] {A}, TOK.encode("BREAK"), new int[] {CAT})), kohya.chunks().get(0).tokens());
    }

    @Test
    void emptyPromptIsOnePaddingChunk() {
        PromptChunks.Result r = PromptChunks.of("", TOK);
        assertEquals(1, r.chunks().size());
        assertArrayEquals(chunk(), r.chunks().getFirst().tokens());
        assertEquals(0, r.tokenCount());
        assertArrayEquals(Chunk.empty().tokens(), r.chunks().getFirst().tokens());
    }

    @Test
    void kohyaKeepsThreeChunks() {
        PromptChunks.Result r = PromptChunks.of(words("a", 300), TOK, Chunking.KOHYA);
        assertEquals(3, r.chunks().size());
        assertEquals(4, PromptChunks.of(words("a", 300), TOK).chunks().size());
    }

    @Test
    void padToAddsEmptyChunks() {
        List<Chunk> padded = PromptChunks.of("a", TOK).padTo(3);
        assertEquals(3, padded.size());
        assertArrayEquals(chunk(), padded.get(2).tokens());
        assertArrayEquals(chunk(A), padded.get(0).tokens());
    }

    @Test
    void emphasisOriginalKeepsTheMean() {
        // (T=3, D=2); multiply token 1 by 2: [1,2, 6,8, 5,6], mean 21/6 -> 28/6, scale 0.75
        float[] h = {1, 2, 3, 4, 5, 6};
        Emphasis.ORIGINAL.apply(h, new float[] {1, 2, 1}, 2);
        assertArrayEquals(new float[] {0.75f, 1.5f, 4.5f, 6f, 3.75f, 4.5f}, h, 1e-6f);
        float[] g = {1, 2, 3, 4, 5, 6};
        Emphasis.NO_NORM.apply(g, new float[] {1, 2, 1}, 2);
        assertArrayEquals(new float[] {1, 2, 6, 8, 5, 6}, g);
    }
}
