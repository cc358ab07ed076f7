package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;

class TomlTest {
    private static Map<String, Object> p(String s) {
        return Toml.parse(s, "t.toml");
    }

    @Test
    void parsesKohyaStyleConfig() {
        String text = """
                # written by kohya's --output_config
                [model_arguments]
                pretrained_model_name_or_path = "/models/pony.safetensors"  # trailing comment

                [training_arguments]
                learning_rate = 3e-4
                max_train_steps = 80
                gradient_checkpointing = true
                network_args = [ "preset=full", "conv_dim=256",
                    "algo=locon", ]   # multi-line, trailing comma
                resolution = "1024,1024"
                """;
        Map<String, Object> m = p(text);
        @SuppressWarnings("unchecked")
        Map<String, Object> train = (Map<String, Object>) m.get("training_arguments");
        assertEquals(3e-4, train.get("learning_rate"));
        assertEquals(80L, train.get("max_train_steps"));
        assertEquals(Boolean.TRUE, train.get("gradient_checkpointing"));
        assertEquals(List.of("preset=full", "conv_dim=256", "algo=locon"), train.get("network_args"));
        assertEquals("/models/pony.safetensors",
                ((Map<?, ?>) m.get("model_arguments")).get("pretrained_model_name_or_path"));
    }

    @Test
    void stringsAndEscapes() {
        Map<String, Object> m = p("""
                a = "tab\\there \\"q\\" \\\\ \\u00e9 \\U0001F600"
                b = 'C:\\Users\\me\\no escapes'
                c = \"\"\"
                line1
                line2\\
                   continued\"\"\"
                d = '''
                raw \\n '' here'''
                "quoted key" = 1
                'lit.key' = 2
                """);
        assertEquals("tab\there \"q\" \\ \u00e9 \uD83D\uDE00", m.get("a"));
        assertEquals("C:\\Users\\me\\no escapes", m.get("b"));
        assertEquals("line1\nline2continued", m.get("c"));
        assertEquals("raw \\n '' here", m.get("d"));
        assertEquals(1L, m.get("quoted key"));
        assertEquals(2L, m.get("lit.key"));
    }

    @Test
    void numbersAndBooleans() {
        Map<String, Object> m = p("""
                i = +1_000
                n = -17
                h = 0xff
                o = 0o17
                b = 0b101
                f = 6.626e-34
                g = -0.5
                e = 5E+2
                inf1 = inf
                ninf = -inf
                nan1 = nan
                t = true
                ff = false
                """);
        assertEquals(1000L, m.get("i"));
        assertEquals(-17L, m.get("n"));
        assertEquals(255L, m.get("h"));
        assertEquals(15L, m.get("o"));
        assertEquals(5L, m.get("b"));
        assertEquals(6.626e-34, m.get("f"));
        assertEquals(-0.5, m.get("g"));
        assertEquals(500.0, m.get("e"));
        assertEquals(Double.POSITIVE_INFINITY, m.get("inf1"));
        assertEquals(Double.NEGATIVE_INFINITY, m.get("ninf"));
        assertTrue(Double.isNaN((Double) m.get("nan1")));
        assertEquals(true, m.get("t"));
        assertEquals(false, m.get("ff"));
    }

    @Test
    void tablesDottedKeysInlineTablesAndArraysOfTables() {
        Map<String, Object> m = p("""
                top = 1
                a.b.c = "x"
                [s.t]
                k = [[1, 2], ["a"]]
                inline = { x = 1, y.z = 2 }
                [[items]]
                name = "one"
                [[items]]
                name = "two"
                """);
        assertEquals(1L, m.get("top"));
        assertEquals("x", ((Map<?, ?>) ((Map<?, ?>) m.get("a")).get("b")).get("c"));
        Map<?, ?> st = (Map<?, ?>) ((Map<?, ?>) m.get("s")).get("t");
        assertEquals(List.of(List.of(1L, 2L), List.of("a")), st.get("k"));
        assertEquals(Map.of("x", 1L, "y", Map.of("z", 2L)), st.get("inline"));
        assertEquals(List.of(Map.of("name", "one"), Map.of("name", "two")), m.get("items"));
    }

    @Test
    void errorsNameTheLine() {
        InputException e = assertThrows(InputException.class, () -> p("a = 1\nb = \n"));
        assertTrue(e.getMessage().startsWith("t.toml:2:"), e.getMessage());
        assertThrows(InputException.class, () -> p("a = 1\na = 2"));          // duplicate key
        assertThrows(InputException.class, () -> p("[t]\n[t]"));              // duplicate table
        assertThrows(InputException.class, () -> p("a = \"open"));            // unterminated
        assertThrows(InputException.class, () -> p("a = cosine"));            // unquoted string
        assertThrows(InputException.class, () -> p("a = 1 b = 2"));           // junk after value
        assertThrows(InputException.class, () -> p("a = 007"));               // leading zeros
        assertThrows(InputException.class, () -> p("a = 1__0"));              // bad underscore
        assertThrows(InputException.class, () -> p("a = \"C:\\path\""));     // bad escape
        assertThrows(InputException.class, () -> p("d = 1979-05-27"));       // dates unsupported
        assertThrows(InputException.class, () -> p("a = [1, 2"));             // unterminated array
        InputException esc = assertThrows(InputException.class, () -> p("x = 1\ny = \"C:\\data\""));
        assertTrue(esc.getMessage().contains(":2:") && esc.getMessage().contains("literal string"), esc.getMessage());
    }

    @Test
    void quotesBeforeTheClosingDelimiterBelongToTheContent() {
        Map<String, Object> m = p("a = \"\"\"say \"hi\"\"\"\"\"\nb = '''it'''''\n");
        assertEquals("say \"hi\"\"", m.get("a"));
        assertEquals("it''", m.get("b"));
    }

    @Test
    void emptyDocumentAndCrlf() {
        assertTrue(p("").isEmpty());
        assertEquals(Map.of("a", 1L, "b", "x"), p("# c\r\na = 1\r\nb = \"x\"\r\n"));
    }
}
