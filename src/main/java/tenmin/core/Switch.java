package tenmin.core;

/**
 * An on/off switch for an A/B measurement, read from a system property (tests), which wins when set, or else an
 * environment variable (users). A switch that is on by default is off only at {@code 0}; one that is off by default
 * is on only at {@code 1} (blanks around the value ignored).
 *
 * @param property  the system property
 * @param env       the environment variable
 * @param byDefault the state when neither says otherwise
 */
public record Switch(String property, String env, boolean byDefault) {
    /** A switch that is on unless set to {@code 0}. */
    public Switch(String property, String env) {
        this(property, env, true);
    }

    /** The switch's state: see the class comment. */
    public boolean on() {
        String v = System.getProperty(property, System.getenv(env));
        String s = v == null ? null : v.strip();
        return byDefault ? !"0".equals(s) : "1".equals(s);
    }
}
