package tenmin.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;

/**
 * Writes kohya/LyCORIS-style LoRA files with random weights for tests and benchmarks: three tensors per
 * module ({@code lora_down.weight} {@code [r, in(, k, k)]}, {@code lora_up.weight} {@code [out, r(, 1, 1)]},
 * 0-d {@code alpha}), all in one dtype, values from a seeded generator.
 */
public final class SyntheticLora {
    private SyntheticLora() {
    }

    /** One module to generate; kernel 1 with {@code conv} false gives a Linear module. */
    public record Module(String name, long out, long in, int kernel, boolean conv, int rank, double alpha) {
    }

    /**
     * The modules of list {@code listName} of {@code sdxl-keys.json} ({@code locon_unet}, {@code locon_te_mlp},
     * {@code locon_te_full}) with real in/out sizes and the given ranks (alpha = rank / 2).
     */
    public static List<Module> sdxlModules(String listName, int linearRank, int convRank) {
        try {
            JsonNode root = new ObjectMapper().readTree(Fixtures.resolve("sdxl-keys.json").toFile());
            List<Module> out = new ArrayList<>();
            for (JsonNode m : root.get(listName)) {
                boolean conv = m.get("kind").asText().equals("conv");
                int k = m.get("kernel").asInt();
                int rank = conv && k > 1 ? convRank : linearRank;
                out.add(new Module(m.get("lora_name").asText(), m.get("out").asLong(), m.get("in").asLong(), k, conv,
                        rank, rank / 2.0));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes the modules with N(0, 0.1²) weights from {@code seed}. */
    public static void write(Path path, List<Module> modules, StDType dtype, long seed, Map<String, String> metadata) {
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(metadata);
        SplittableRandom rng = new SplittableRandom(seed);
        for (Module m : modules) {
            long[] down = m.conv() ? new long[] {m.rank(), m.in(), m.kernel(), m.kernel()} : new long[] {m.rank(), m.in()};
            long[] up = m.conv() ? new long[] {m.out(), m.rank(), 1, 1} : new long[] {m.out(), m.rank()};
            w.addFloats(m.name() + ".lora_down.weight", dtype, down, random(rng, numel(down)));
            w.addFloats(m.name() + ".lora_up.weight", dtype, up, random(rng, numel(up)));
            w.addFloats(m.name() + ".alpha", dtype, new long[0], new float[] {(float) m.alpha()});
        }
        try {
            w.write(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return Math.toIntExact(n);
    }

    private static float[] random(SplittableRandom rng, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (0.1 * gaussian(rng));
        }
        return v;
    }

    private static double gaussian(SplittableRandom rng) {
        double u = rng.nextDouble();
        double v = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }
}
