package tenmin.cli;

import java.security.SecureRandom;

import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.sample.Sampler;
import tenmin.sample.SamplerKind;
import tenmin.sample.ScheduleType;

/** The settings of one picture ({@code sample}, {@code atlas}); defaults here, one place. */
final class GenerationOptions {
    @Option(names = "--negative", paramLabel = "TEXT", description = "Negative prompt (default: none).")
    String negative = "";

    @Option(names = {"-W", "--width"}, paramLabel = "PX", description = "Image width, a multiple of 8 (and of 32 for the"
            + " SDXL U-Net); default ${DEFAULT-VALUE}.")
    int width = 1024;

    @Option(names = {"-H", "--height"}, paramLabel = "PX", description = "Image height; default ${DEFAULT-VALUE}.")
    int height = 1024;

    @Option(names = "--steps", paramLabel = "N", description = "Sampling steps (U-Net calls), 1..1000; default ${DEFAULT-VALUE}.")
    int steps = 30;

    @Option(names = "--cfg", paramLabel = "SCALE", description = "Classifier-free guidance scale; 1 = prompt only"
            + " (the negative prompt has no effect); default ${DEFAULT-VALUE}.")
    double cfg = 7.0;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the noise (PyTorch CPU generator, as A1111's"
            + " RNG=CPU and ComfyUI); -1 = a random one, printed and stored in the image; default ${DEFAULT-VALUE}.")
    long seed = -1;

    @Option(names = "--sampler", paramLabel = "NAME", description = "Euler a (euler_a, default), Euler (euler),"
            + " DPM++ 2M (dpmpp_2m, also \"DPM++ 2M Karras\"), DDIM (ddim); A1111 or kohya names.")
    String sampler = "euler_a";

    @Option(names = "--pad-cond-uncond", description = "Pad the shorter of prompt and negative prompt with empty"
            + " chunks to the same length (A1111's \"Pad prompt/negative prompt to be same length\" option, kohya's"
            + " pipeline); by default, as in A1111, they keep their lengths and run as separate U-Net batches.")
    boolean padCondUncond;

    @Option(names = "--schedule", paramLabel = "TYPE", description = "Sigma schedule: normal or karras (default: normal,"
            + " or karras for a sampler name ending in Karras).")
    String schedule;

    /** Prompt encoding as A1111 does it, with this run's padding choice. */
    tenmin.sample.PromptEncoder.Options promptOptions() {
        return tenmin.sample.PromptEncoder.Options.A1111.withPadCondUncond(padCondUncond);
    }

    /** The sampler settings for {@code samplerName} ({@code --sampler} unless a prompt line sets one) and {@code steps}. */
    Sampler.Settings samplerSettings(String samplerName, int steps) {
        SamplerKind kind = SamplerKind.parse(samplerName);
        ScheduleType type = schedule != null ? ScheduleType.parse(schedule) : ScheduleType.fromSamplerName(samplerName);
        return Sampler.Settings.of(kind, steps, type);
    }

    /** The seed to use: {@code requested} when >= 0, -1 for a fresh random 32-bit seed, anything else an error. */
    static long seedOrRandom(long requested, String where) {
        if (requested >= 0) {
            return requested;
        }
        if (requested != -1) {
            throw new InputException(where + ": seed " + requested + " must be >= 0 (or -1 for a random one)");
        }
        return new SecureRandom().nextLong(1L << 32); // the user's fresh seed, recorded in the image
    }
}
