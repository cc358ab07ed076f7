package tenmin.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** Expected strings are what CPython 3's json.dumps prints for the same values. */
class PyJsonTest {
    @Test
    void usesPythonSeparatorsAndFloatRepr() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", 1.0);
        m.put("b", 1e-07);
        m.put("c", null);
        m.put("d", 3L);
        m.put("e", Arrays.asList(0.5, -0.0, true));
        assertEquals("{\"a\": 1.0, \"b\": 1e-07, \"c\": null, \"d\": 3, \"e\": [0.5, -0.0, true]}", PyJson.dumps(m));
    }

    @Test
    void writesNonFiniteFloatsAsJavaScriptNames() {
        assertEquals("[-Infinity, Infinity, NaN]", PyJson.dumps(Arrays.asList(Double.NEGATIVE_INFINITY,
                Double.POSITIVE_INFINITY, Double.NaN)));
    }

    @Test
    void escapesLikeEnsureAscii() {
        // json.dumps("q\"b\\n\n\t\u0001é€😀\u007f")
        assertEquals("\"q\\\"b\\\\n\\n\\t\\u0001\\u00e9\\u20ac\\ud83d\\ude00\\u007f\"",
                PyJson.dumps("q\"b\\n\n\t\u0001é€😀\u007f"));
    }
}
