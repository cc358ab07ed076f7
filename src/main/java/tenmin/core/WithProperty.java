package tenmin.core;

import java.util.function.Supplier;

/**
 * Runs code with a system property set (the switches tenmin reads before its environment variable), then restores it:
 * tests and the device checks that try a switch both ways.
 */
public final class WithProperty {
    private WithProperty() {
    }

    /** {@code body}'s result, with {@code key} set to {@code value} while it runs. */
    public static <T> T with(String key, String value, Supplier<T> body) {
        String before = System.getProperty(key);
        System.setProperty(key, value);
        try {
            return body.get();
        } finally {
            if (before == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, before);
            }
        }
    }
}
