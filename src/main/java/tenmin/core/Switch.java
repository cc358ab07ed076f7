package tenmin.core;

/**
 * An on/off switch for an A/B measurement: on unless the system property (tests) or else the environment variable
 * is {@code 0}.
 *
 * @param property the system property, which wins when set
 * @param env      the environment variable users set
 */
public record Switch(String property, String env) {
    /** False when {@link #property}, or else {@link #env}, is {@code 0} (blanks around it ignored). */
    public boolean on() {
        String v = System.getProperty(property, System.getenv(env));
        return !"0".equals(v == null ? null : v.strip());
    }
}
