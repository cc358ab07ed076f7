package tenmin.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.Half;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.Fixtures;
import tenmin.testing.SyntheticLora;

/**
 * Full-size benchmark inputs for the LoRA tools (not a test; run by hand):
 * <pre>
 * ./tenmin --version && scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
 *     -cp target/tenmin.jar:target/test-classes tenmin.bench.BenchInputs locon bench/guide-locon.safetensors
 * ... tenmin.bench.BenchInputs checkpoint bench/sdxl-random.safetensors
 * </pre>
 * {@code locon}: the guide's LoCon shape (sdxl-keys.json {@code locon_unet}: Linear and 1×1 conv rank 8,
 * 3×3 conv rank 256, alpha rank/2; {@code locon_te_mlp}: 88 text-encoder MLP modules rank 8), fp16,
 * 234 MB. {@code checkpoint}: every UNet, TE1 and TE2 key of SDXL base with its real shape (no VAE),
 * random fp16 values of scale 1/sqrt(fan-in), 6.77 GB; seeded, so reruns write the same bytes.
 */
public final class BenchInputs {
    private BenchInputs() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: BenchInputs locon|checkpoint OUT.safetensors");
            System.exit(2);
        }
        Path out = Path.of(args[1]);
        long t0 = System.nanoTime();
        if (args[0].equals("locon")) {
            List<SyntheticLora.Module> mods = new ArrayList<>(SyntheticLora.sdxlModules("locon_unet", 8, 256));
            mods.addAll(SyntheticLora.sdxlModules("locon_te_mlp", 8, 8));
            SyntheticLora.write(out, mods, StDType.F16, 42, Map.of("ss_network_module", "lycoris.kohya",
                    "ss_network_dim", "8", "ss_network_alpha", "4",
                    "ss_network_args", "{\"preset\": \"full\", \"conv_dim\": \"256\", \"conv_alpha\": \"4\", \"algo\": \"locon\"}"));
        } else {
            checkpoint(out);
        }
        System.out.printf("wrote %s in %.1f s%n", out, (System.nanoTime() - t0) / 1e9);
    }

    private static void checkpoint(Path out) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Fixtures.resolve("sdxl-keys.json").toFile());
        SafetensorsWriter w = new SafetensorsWriter();
        long seed = 1;
        for (String part : new String[] {"unet", "te1", "te2"}) {
            for (JsonNode row : root.get(part)) {
                String key = row.get(0).asText();
                JsonNode s = row.get(1);
                long[] shape = new long[s.size()];
                long n = 1;
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = s.get(i).asLong();
                    n *= shape[i];
                }
                if (key.endsWith("position_ids")) {
                    long[] ids = new long[(int) n];
                    for (int i = 0; i < ids.length; i++) {
                        ids[i] = i;
                    }
                    w.addLongs(key, shape, ids);
                    continue;
                }
                long fanIn = shape.length >= 2 ? n / shape[0] : 1;
                float scale = (float) (1 / Math.sqrt(fanIn));
                long count = n;
                long mySeed = seed++;
                w.add(key, StDType.F16, shape, o -> {
                    SplittableRandom rng = new SplittableRandom(mySeed);
                    ByteBuffer b = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                    for (long i = 0; i < count; i++) {
                        if (!b.hasRemaining()) {
                            o.write(b.array(), 0, b.position());
                            b.clear();
                        }
                        b.putShort(Half.f32ToF16(scale * (float) (rng.nextDouble() * 2 - 1) * 1.7320508f));
                    }
                    o.write(b.array(), 0, b.position());
                });
            }
        }
        w.metadata("modelspec.architecture", "stable-diffusion-xl-v1-base");
        w.write(out);
    }
}
