package tenmin.models.clip;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.testing.Fixtures;

class ClipTokenizerTest {

    private static final ClipTokenizer TOK = ClipTokenizer.shared();

    private static JsonNode cases() throws IOException {
        return new ObjectMapper().readTree(Fixtures.require("tokenizer-cases.json").toFile()).get("cases");
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    /** Every case of tokenizer-cases.json, both encoders, ids and counts exactly. */
    @TestFactory
    Stream<DynamicTest> matchesEveryFixtureCase() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        int index = 0;
        for (JsonNode c : cases()) {
            String text = c.get("text").asText();
            int[] te1 = ints(c.get("te1"));
            int[] te2 = ints(c.get("te2"));
            int n = c.get("n_bpe_tokens").asInt();
            boolean truncated = c.get("truncated").asBoolean();
            String label = "tokenizer case " + index++ + " [" + abbreviate(text) + "]";
            tests.add(DynamicTest.dynamicTest(label, () -> {
                ClipTokenizer.Tokens t1 = TOK.tokenize(text, ClipTokenizer.PAD_TE1);
                ClipTokenizer.Tokens t2 = TOK.tokenize(text, ClipTokenizer.PAD_TE2);
                assertArrayEquals(te1, t1.ids(), () -> "te1 of " + text + "\n got " + Arrays.toString(t1.ids()));
                assertArrayEquals(te2, t2.ids(), () -> "te2 of " + text + "\n got " + Arrays.toString(t2.ids()));
                assertEquals(n, t1.nBpeTokens(), "n_bpe_tokens");
                assertEquals(n, TOK.encode(text).length, "untruncated length");
                assertEquals(truncated, t1.truncated(), "truncated");
                assertEquals(truncated, t2.truncated(), "truncated");
            }));
        }
        assertEquals(30, tests.size(), "tokenizer-cases.json case count");
        return tests.stream();
    }

    private static String abbreviate(String s) {
        String one = s.replace('\n', ' ').replace('\r', ' ').replace('\t', ' ');
        return one.length() > 40 ? one.substring(0, 40) + "…" : one;
    }

    @Test
    void untruncatedEncodingKeepsTokensPastSeventyFive() throws IOException {
        for (JsonNode c : cases()) {
            if (!c.get("truncated").asBoolean()) {
                continue;
            }
            String text = c.get("text").asText();
            int[] all = TOK.encode(text);
            int[] te1 = ints(c.get("te1"));
            assertEquals(c.get("n_bpe_tokens").asInt(), all.length);
            assertArrayEquals(Arrays.copyOfRange(te1, 1, 76), Arrays.copyOf(all, 75), "first 75 ids of " + text);
        }
    }

    @Test
    void vocabularyHasTheDocumentedLayout() {
        // fixtures README: 256 byte symbols, the same with </w>, 48,894 merges, then the two specials
        assertEquals("!", TOK.token(0));
        assertEquals("!</w>", TOK.token(256));
        assertEquals("<|startoftext|>", TOK.token(49406));
        assertEquals("<|endoftext|>", TOK.token(49407));
        assertEquals(267, TOK.id(",</w>"));
        assertEquals(-1, TOK.id("no such token"));
    }

    @Test
    void decodeInvertsEncodeUpToCleanUp() {
        String text = "A Photo of a CAT, café 😀";
        assertEquals("a photo of a cat , café 😀 ", TOK.decode(TOK.encode(text)));
    }

    @Test
    void cleanUpFollowsFtfyAndHtmlUnescape() {
        assertEquals("fine flow fullwidth text", TOK.clean("ﬁne ﬂow ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ"));
        assertEquals("'single' \"double\"", TOK.clean("‘single’ “double”"));
        // ftfy decodes entities only when the text has no '<'; openai then unescapes twice more
        assertEquals("tom & jerry", TOK.clean("Tom &amp;amp; Jerry"));
        assertEquals("<b> & é", TOK.clean("<b> &amp;amp; &eacute;"));
        // ftfy's upper-cased entity names
        assertEquals("é", TOK.clean("&EACUTE;"));
        // legacy entity without semicolon, numeric references, C1 numeric references as Windows-1252
        assertEquals("© 1 € a", TOK.clean("&copy 1 &#128; &#x61;"));
        // control characters removed, C1 control read as cp1252, whitespace collapsed
        assertEquals("ab … … c", TOK.clean("a\u0000b \u0085 \u2026\u00a0\u3000 c"));
    }

    @Test
    void missingVocabularyFileIsAnInputError(@TempDir Path dir) throws IOException {
        InputException e = assertThrows(InputException.class, () -> ClipTokenizer.load(dir.resolve("nope.txt.gz")));
        assertTrue(e.getMessage().contains("nope.txt.gz"), e.getMessage());
        Path notGzip = dir.resolve("vocab.txt.gz");
        Files.writeString(notGzip, "not gzip");
        InputException e2 = assertThrows(InputException.class, () -> ClipTokenizer.load(notGzip));
        assertTrue(e2.getMessage().contains("vocab.txt.gz"), e2.getMessage());
    }

    @Test
    void loadsTheFixtureVocabularyFile() throws IOException {
        ClipTokenizer fromFile = ClipTokenizer.load(Fixtures.require("clip/bpe_simple_vocab_16e6.txt.gz"));
        for (JsonNode c : cases()) {
            String text = c.get("text").asText();
            assertArrayEquals(TOK.encode(text), fromFile.encode(text), text);
        }
    }

    /**
     * sd-scripts' {@code --max_token_length} layout (get_input_ids; trainer-spec §4.1), built by hand: a caption of
     * 100 BPE ids in 225 tokens is {@code [BOS, t0..t99, EOS, pad×124]} cut into windows
     * {@code [BOS] + ids[i, i+75) + [ids[226]]}, i = 1, 76, 151, with text encoder 2's two fix-ups.
     */
    @Test
    void maxTokenLengthWindowsFollowTheReference() {
        int bos = ClipTokenizer.BOS;
        int eos = ClipTokenizer.EOS;
        int[] bpe = new int[100];
        for (int i = 0; i < bpe.length; i++) {
            bpe[i] = 1000 + i;
        }
        int[][] te1 = ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE1, 225);
        int[][] te2 = ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, 225);
        assertEquals(3, te1.length);
        assertEquals(3, te2.length);
        // window 0: BOS, t0..t74, then the last id of the 227 (pad); TE2: a token before it, so it becomes EOS
        int[] w0 = new int[77];
        w0[0] = bos;
        System.arraycopy(bpe, 0, w0, 1, 75);
        w0[76] = eos;
        assertArrayEquals(w0, te1[0]);
        assertArrayEquals(w0, te2[0]);
        // window 1: BOS, t75..t99, EOS, pads, last id (pad)
        int[] w1te1 = new int[77];
        Arrays.fill(w1te1, eos);
        w1te1[0] = bos;
        System.arraycopy(bpe, 75, w1te1, 1, 25);
        assertArrayEquals(w1te1, te1[1]);
        int[] w1te2 = new int[77];
        w1te2[0] = bos;
        System.arraycopy(bpe, 75, w1te2, 1, 25);
        w1te2[26] = eos;
        assertArrayEquals(w1te2, te2[1]);
        // window 2: nothing but padding: TE1 BOS + EOS…, TE2 BOS, EOS (the fix-up after BOS), 0…
        int[] w2te1 = new int[77];
        Arrays.fill(w2te1, eos);
        w2te1[0] = bos;
        assertArrayEquals(w2te1, te1[2]);
        int[] w2te2 = new int[77];
        w2te2[0] = bos;
        w2te2[1] = eos;
        assertArrayEquals(w2te2, te2[2]);
        // a caption of 300 ids is cut at 225: the last window ends with the EOS at position 226
        int[] longer = new int[300];
        Arrays.fill(longer, 7);
        int[][] cut = ClipTokenizer.windows(longer, ClipTokenizer.PAD_TE2, 225);
        for (int[] w : cut) {
            assertEquals(eos, w[76]);
            assertEquals(7, w[75]);
        }
        // 150: two windows; 75: the plain layout
        assertEquals(2, ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, 150).length);
        assertArrayEquals(ClipTokenizer.layout(bpe, ClipTokenizer.PAD_TE2).ids(),
                ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, 75)[0]);
        assertThrows(IllegalArgumentException.class, () -> ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, 100));
    }
}
