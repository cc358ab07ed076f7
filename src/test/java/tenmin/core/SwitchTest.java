package tenmin.core;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@link Switch}: the property wins over the environment; a default-on switch is off only at 0, a default-off one on
 * only at 1.
 */
class SwitchTest {
    private static final String PROPERTY = "tenmin.switchTest";
    /** No environment of the test run sets this. */
    private static final String ENV = "TENMIN_SWITCH_TEST_UNSET";

    @Test
    void defaultOnIsOffOnlyAtZero() {
        Switch s = new Switch(PROPERTY, ENV);
        assertTrue(at(s, null), "unset");
        assertFalse(at(s, "0"));
        assertFalse(at(s, " 0 "), "blanks ignored");
        assertTrue(at(s, "1"));
        assertTrue(at(s, "no"), "anything but 0 leaves it on");
    }

    @Test
    void defaultOffIsOnOnlyAtOne() {
        Switch s = new Switch(PROPERTY, ENV, false);
        assertFalse(at(s, null), "unset");
        assertTrue(at(s, "1"));
        assertTrue(at(s, " 1\n"), "blanks ignored");
        assertFalse(at(s, "0"));
        assertFalse(at(s, "yes"), "anything but 1 leaves it off");
    }

    /** The switch with the property at {@code value} (null: unset; no test sets this one). */
    private static boolean at(Switch s, String value) {
        return value == null ? s.on() : WithProperty.with(PROPERTY, value, s::on);
    }
}
