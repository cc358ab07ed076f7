package tenmin.sample;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import tenmin.core.InputException;

/**
 * The samplers tenmin offers, with the names A1111 writes into image metadata and the names kohya's
 * {@code --sample_sampler} and prompt-file {@code --ss} accept.
 */
public enum SamplerKind {
    /** diffusers {@code EulerAncestralDiscreteScheduler} (kohya's default {@code euler_a}). */
    EULER_A("Euler a", "euler_a", "k_euler_a", "euler_ancestral"),
    /** diffusers {@code EulerDiscreteScheduler} / k-diffusion {@code sample_euler}. */
    EULER("Euler", "euler", "k_euler"),
    /** k-diffusion {@code sample_dpmpp_2m} (diffusers {@code DPMSolverMultistepScheduler}, dpmsolver++, order 2). */
    DPMPP_2M("DPM++ 2M", "dpmpp_2m", "dpmsolver++", "k_dpmpp_2m"),
    /** diffusers {@code DDIMScheduler}, deterministic by default (η = 0). */
    DDIM("DDIM", "ddim");

    private final String a1111Name;
    private final List<String> aliases;

    SamplerKind(String a1111Name, String... aliases) {
        this.a1111Name = a1111Name;
        this.aliases = List.of(aliases);
    }

    /** The name in A1111's {@code Sampler:} field ("Euler a"). */
    public String a1111Name() {
        return a1111Name;
    }

    /** kohya's name ("euler_a"). */
    public String kohyaName() {
        return aliases.getFirst();
    }

    /**
     * Reads a sampler name as users write it: A1111's ("Euler a", "DPM++ 2M"), kohya's ("euler_a",
     * "dpmsolver++", "k_euler"), case-insensitive. A1111's combined "DPM++ 2M Karras" is accepted here
     * as DPM++ 2M; {@link ScheduleType#fromSamplerName} reads its schedule.
     */
    public static SamplerKind parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        if (n.endsWith(" karras")) {
            n = n.substring(0, n.length() - " karras".length());
        }
        for (SamplerKind k : values()) {
            if (k.a1111Name.toLowerCase(Locale.ROOT).equals(n) || k.aliases.contains(n)) {
                return k;
            }
        }
        List<String> known = new ArrayList<>();
        for (SamplerKind k : values()) {
            known.add(k.a1111Name + " (" + k.kohyaName() + ")");
        }
        throw new InputException("unknown sampler '" + name + "'; expected one of " + String.join(", ", known));
    }
}
