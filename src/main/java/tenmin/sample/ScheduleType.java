package tenmin.sample;

import java.util.Locale;

import tenmin.core.InputException;

/** Where the sigmas of a run lie (A1111's "Schedule type"). */
public enum ScheduleType {
    /**
     * diffusers' linspace timesteps with linearly interpolated sigmas ({@link SigmaSchedule#linspace}); for
     * DDIM its own "leading" integer timesteps. Not written to image metadata (A1111: "Automatic").
     */
    NORMAL(null),
    /** Karras et al. sigmas, ρ = 7 ({@link SigmaSchedule#karras}); not for DDIM. */
    KARRAS("Karras");

    private final String a1111Name;

    ScheduleType(String a1111Name) {
        this.a1111Name = a1111Name;
    }

    /** The value of A1111's {@code Schedule type:} field, or null when the field is left out. */
    public String a1111Name() {
        return a1111Name;
    }

    /** Reads "normal"/"automatic"/"default" or "karras" (case-insensitive). */
    public static ScheduleType parse(String name) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "normal", "automatic", "default", "linspace" -> NORMAL;
            case "karras" -> KARRAS;
            default -> throw new InputException("unknown schedule type '" + name + "'; expected normal or karras");
        };
    }

    /** KARRAS for A1111's old combined names such as "DPM++ 2M Karras", else NORMAL. */
    public static ScheduleType fromSamplerName(String samplerName) {
        return samplerName.trim().toLowerCase(Locale.ROOT).endsWith(" karras") ? KARRAS : NORMAL;
    }
}
