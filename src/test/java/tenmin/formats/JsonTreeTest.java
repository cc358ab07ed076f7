package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

import tenmin.testing.Fixtures;

/**
 * {@link JsonTree#parseFast} against Jackson ({@link JsonTree#parse}): on every safetensors header of the
 * fixtures, on hand-written documents, and on thousands of random mutations of a header, the fast path either
 * gives exactly Jackson's tree or declines (null); it never accepts what Jackson rejects.
 */
class JsonTreeTest {
    /** The fast path's tree, checked against Jackson's: equal, or null (declined), never accepting an error. */
    private static Object agree(String text) {
        Object fast = JsonTree.parseFast(text);
        Object jackson;
        try {
            jackson = JsonTree.parse(text);
        } catch (IOException e) {
            assertNull(fast, () -> "fast path accepted what Jackson rejects (" + e.getMessage() + "): " + text);
            return null;
        }
        if (fast != null) {
            assertEquals(jackson, fast, () -> "trees differ for: " + text);
        }
        return fast;
    }

    private static String header(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            long n = ByteBuffer.wrap(in.readNBytes(8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
            return new String(in.readNBytes((int) n), StandardCharsets.UTF_8);
        }
    }

    private static List<Path> fixtureFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.walk(Fixtures.root())) {
            s.filter(p -> p.toString().endsWith(".safetensors")).sorted().forEach(files::add);
        }
        return files;
    }

    @Test
    void everyFixtureHeaderTakesTheFastPathWithJacksonsTree() throws IOException {
        List<Path> files = fixtureFiles();
        assertTrue(files.size() >= 5, "fixture files: " + files);
        for (Path f : files) {
            assertNotNull(agree(header(f)), "fast path declined " + f);
        }
    }

    @Test
    void handWrittenDocuments() {
        for (String ok : List.of("{}", "[]", " {\"a\" : [1, -2, 0, 123456789012345678] }\\n".replace("\\n", "\n"),
                "{\"__metadata__\":{\"k\":\"{\\\"x\\\": [1, 2], \\\"y\\\": \\\"\\\\u00e9\\\"}\"}}",
                "{\"esc\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041\\u00e9\\u20ac\"}", "{\"ünïcødé ✓\":\"日本\"}",
                "[true,false,null,{\"a\":{\"b\":[[]]}}]")) {
            assertNotNull(agree(ok), ok);
        }
        // declined: left to Jackson, which parses or rejects them
        for (String other : List.of("1.5", "[1e3]", "[12345678901234567890]", "[-0]", "[007]", "{\"a\":1,\"a\":2}",
                "{\"a\":1,}", "[1,]", "{'a':1}", "{\"a\":1} x", "\"\\ud83d\\ude00\"", "\"\\ud800\"", "[\"tab\there\"]",
                "[\"\\x\"]", "[\"\\u12g4\"]", "[\"\\u０１２３\"]", "{\"a\" 1}", "[", "{\"a\":", "nul", "[+1]", "[01]",
                "", "   ")) {
            assertNull(JsonTree.parseFast(other), other);
            agree(other);
        }
    }

    @Test
    void randomMutationsOfAHeaderNeverDisagree() throws IOException {
        String base = "{\"__metadata__\":{\"ss_tags\":\"{\\\"a b\\\": 12, \\\"c\\\": [1, 2]}\",\"format\":\"pt\"},"
                + "\"lora_unet_x.alpha\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]},"
                + "\"lora_unet_x.lora_down.weight\":{\"dtype\":\"F16\",\"shape\":[4, 320, 3, 3],\"data_offsets\":[2,23042]}}";
        assertNotNull(agree(base), base);
        String alphabet = "{}[]:,\"\\ 0123456789-.eEtrufalsn\nu\t";
        SplittableRandom rnd = new SplittableRandom(11);
        int accepted = 0;
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder sb = new StringBuilder(base);
            if (trial % 5 == 0) {
                sb.setLength(rnd.nextInt(sb.length() + 1)); // truncated
            }
            int edits = 1 + rnd.nextInt(3);
            for (int e = 0; e < edits && sb.length() > 0; e++) {
                int at = rnd.nextInt(sb.length());
                switch (rnd.nextInt(3)) {
                    case 0 -> sb.setCharAt(at, alphabet.charAt(rnd.nextInt(alphabet.length())));
                    case 1 -> sb.deleteCharAt(at);
                    default -> sb.insert(at, alphabet.charAt(rnd.nextInt(alphabet.length())));
                }
            }
            if (agree(sb.toString()) != null) {
                accepted++;
            }
        }
        assertTrue(accepted > 100, "some mutations stay valid JSON and take the fast path: " + accepted);
    }
}
