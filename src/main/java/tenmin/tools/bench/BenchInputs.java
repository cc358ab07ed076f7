package tenmin.tools.bench;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.PyJson;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;

/**
 * Synthetic full-size benchmark inputs: an SDXL checkpoint with random fp16 weights in the real key
 * layout (UNet, text encoders 1 and 2, VAE: a complete checkpoint that sample and merge also read), and a LoCon of the guide's shape (788 UNet modules:
 * Linear and 1×1 conv rank 8 alpha 4, 3×3 conv rank 256 alpha 4; 88 text-encoder MLP modules rank 8
 * alpha 4). The layout comes from the fixtures' {@code sdxl-keys.json}.
 *
 * <p>Values are deterministic from a seed (each tensor draws from its own stream, seeded by the run's
 * seed and the tensor name) and cheap: 16 random bits per element from a SplitMix64 stream, scaled to a
 * uniform distribution and rounded to fp16. Scales:
 * <ul>
 * <li>checkpoint weights with ≥ 2 dimensions: uniform with RMS 1/sqrt(fan_in) (so ‖W‖_F ≈ sqrt(out));
 *     1-D weights (norm scales) 1 ± 0.1; biases ± 0.02; {@code position_ids} 0..76 (I64);
 * <li>LoCon {@code lora_down}: kaiming-uniform as LyCORIS initialises it, bound 1/sqrt(fan_in);
 * <li>LoCon {@code lora_up}: small uniform values whose scale decays geometrically by 100× across the
 *     rank, from a top scale chosen per module so the largest direction scores between -3 and -2 under
 *     {@code fro_ckpt=1} (log10 of S/‖W‖_F). {@code fro_ckpt=1,thr=-3.55} then keeps about half of each
 *     layer's ranks, as a trained LoRA plausibly would.
 * </ul>
 */
public final class BenchInputs {
    /** One tensor of the checkpoint layout. */
    public record TensorSpec(String name, long[] shape) {
    }

    /** One LoCon module of the layout. */
    public record ModuleSpec(String name, int kernel, int in, int out, int rank, double alpha, boolean conv) {
    }

    /** What to generate. */
    public record Layout(List<TensorSpec> checkpoint, List<ModuleSpec> locon) {
        public long checkpointBytes() {
            long n = 0;
            for (TensorSpec t : checkpoint) {
                n += numel(t.shape) * (isPositionIds(t.name) ? 8 : 2);
            }
            return n;
        }

        public long loconBytes() {
            long n = 0;
            for (ModuleSpec m : locon) {
                n += 2L * ((long) m.rank * m.in * m.kernel * m.kernel + (long) m.out * m.rank + 1);
            }
            return n;
        }
    }

    static final String POSITION_IDS = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids";

    private BenchInputs() {
    }

    /** Reads the layout from {@code sdxl-keys.json} (keys unet, te1, te2, vae, locon_unet, locon_te_mlp). */
    public static Layout readLayout(Path sdxlKeys) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(sdxlKeys.toFile());
        } catch (IOException e) {
            throw new InputException(sdxlKeys + ": cannot read the SDXL layout: " + e.getMessage());
        }
        List<TensorSpec> ckpt = new ArrayList<>();
        for (String part : List.of("unet", "te1", "te2", "vae")) {
            JsonNode list = root.get(part);
            if (list == null || !list.isArray()) {
                throw new InputException(sdxlKeys + ": no \"" + part + "\" key list");
            }
            for (JsonNode e : list) {
                JsonNode shape = e.get(1);
                long[] s = new long[shape.size()];
                for (int i = 0; i < s.length; i++) {
                    s[i] = shape.get(i).asLong();
                }
                ckpt.add(new TensorSpec(e.get(0).asText(), s));
            }
        }
        ckpt.add(new TensorSpec(POSITION_IDS, new long[] {1, 77}));
        List<ModuleSpec> locon = new ArrayList<>();
        for (String part : List.of("locon_unet", "locon_te_mlp")) {
            JsonNode list = root.get(part);
            if (list == null || !list.isArray()) {
                throw new InputException(sdxlKeys + ": no \"" + part + "\" module list");
            }
            for (JsonNode m : list) {
                locon.add(new ModuleSpec(m.get("lora_name").asText(), m.get("kernel").asInt(), m.get("in").asInt(),
                        m.get("out").asInt(), m.get("rank").asInt(), m.get("alpha").asDouble(),
                        m.get("kind").asText().equals("conv")));
            }
        }
        return new Layout(ckpt, locon);
    }

    /** Writes the random checkpoint (streamed; nothing large is held in memory). */
    public static void writeCheckpoint(Layout layout, Path file, long seed, Reporter reporter) throws IOException {
        requireSpace(file, layout.checkpointBytes());
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata("tenmin_bench", "synthetic SDXL checkpoint, random fp16 weights, seed " + seed);
        try (Reporter.Progress progress = reporter.progress("Checkpoint", layout.checkpoint().size())) {
            for (TensorSpec t : layout.checkpoint()) {
                if (isPositionIds(t.name)) {
                    long[] ids = new long[77];
                    for (int i = 0; i < ids.length; i++) {
                        ids[i] = i;
                    }
                    w.addLongs(t.name, t.shape, ids);
                    continue;
                }
                long n = numel(t.shape);
                float center;
                float bound;
                if (t.shape.length >= 2) {
                    long fanIn = n / t.shape[0];
                    center = 0;
                    bound = (float) Math.sqrt(3.0 / fanIn);
                } else if (t.name.endsWith("weight") && t.shape.length == 1) {
                    center = 1;
                    bound = 0.1f;
                } else if (t.shape.length == 0) {
                    center = (float) Math.log(1 / 0.07); // logit_scale
                    bound = 0;
                } else {
                    center = 0;
                    bound = 0.02f;
                }
                long streamSeed = mix(seed, t.name);
                w.add(t.name, StDType.F16, t.shape, out -> {
                    writeUniformF16(out, n, center, bound, streamSeed);
                    progress.advance(1);
                });
            }
            w.write(file);
        }
    }

    /** Writes the LoCon (fp16, alpha tensors included) with the value scales of the class comment. */
    public static void writeLocon(Layout layout, Path file, long seed, Reporter reporter) throws IOException {
        requireSpace(file, layout.loconBytes());
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata("ss_network_module", "lycoris.kohya");
        w.metadata("ss_network_dim", "8");
        w.metadata("ss_network_alpha", "4");
        w.metadata("ss_network_args", PyJson.dumps(new java.util.LinkedHashMap<String, Object>(java.util.Map.of(
                "algo", "locon", "conv_dim", "256", "conv_alpha", "4", "preset", "full"))));
        w.metadata("ss_base_model_version", "sdxl_base_v1-0");
        w.metadata("tenmin_bench", "synthetic LoCon, random weights, seed " + seed);
        try (Reporter.Progress progress = reporter.progress("LoCon", layout.locon().size())) {
            for (ModuleSpec m : layout.locon()) {
                long fanIn = (long) m.in * m.kernel * m.kernel;
                long[] downShape = m.conv ? new long[] {m.rank, m.in, m.kernel, m.kernel} : new long[] {m.rank, m.in};
                long[] upShape = m.conv ? new long[] {m.out, m.rank, 1, 1} : new long[] {m.out, m.rank};
                long downSeed = mix(seed, m.name + ".lora_down.weight");
                long upSeed = mix(seed, m.name + ".lora_up.weight");
                w.add(m.name + ".lora_down.weight", StDType.F16, downShape,
                        out -> writeUniformF16(out, m.rank * fanIn, 0, (float) (1 / Math.sqrt(fanIn)), downSeed));
                w.add(m.name + ".lora_up.weight", StDType.F16, upShape, out -> {
                    writeUp(out, m, upSeed);
                    progress.advance(1);
                });
                w.addFloats(m.name + ".alpha", StDType.F16, new long[0], new float[] {(float) m.alpha});
            }
            w.write(file);
        }
    }

    /**
     * up (out, rank): column j uniform with bound c_j = c_0 · 100^(-j/(rank-1)). With down's rows of norm
     * about 1/sqrt(3) and nearly orthogonal, S_j ≈ (alpha/rank)·c_j·sqrt(out)/3 and ‖W‖_F ≈ sqrt(out), so
     * the top score log10(S_0/‖W‖_F) = top when c_0 = 3·10^top·rank/alpha; top is drawn from [-3, -2].
     */
    private static void writeUp(OutputStream out, ModuleSpec m, long seed) throws IOException {
        SplitMix rnd = new SplitMix(seed);
        double top = -3 + (rnd.next() >>> 11) * 0x1.0p-53;
        double c0 = 3 * Math.pow(10, top) * m.rank / m.alpha;
        float[] bound = new float[m.rank];
        for (int j = 0; j < m.rank; j++) {
            bound[j] = (float) (c0 * Math.pow(100, m.rank == 1 ? 0 : -(double) j / (m.rank - 1)));
        }
        float[] row = new float[m.rank];
        short[] half = new short[m.rank];
        byte[] bytes = new byte[2 * m.rank];
        MemorySegment seg = MemorySegment.ofArray(bytes);
        for (int o = 0; o < m.out; o++) {
            for (int j = 0; j < m.rank; j++) {
                row[j] = unit(rnd) * bound[j];
            }
            for (int j = 0; j < m.rank; j++) {
                half[j] = Float.floatToFloat16(row[j]);
            }
            MemorySegment.copy(half, 0, seg, SHORT_LE, 0, m.rank);
            out.write(bytes);
        }
    }

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int CHUNK = 1 << 16;

    /** n fp16 values uniform in [center - bound, center + bound], 16 random bits each. */
    static void writeUniformF16(OutputStream out, long n, float center, float bound, long seed) throws IOException {
        SplitMix rnd = new SplitMix(seed);
        float[] f = new float[CHUNK];
        short[] h = new short[CHUNK];
        byte[] bytes = new byte[2 * CHUNK];
        MemorySegment seg = MemorySegment.ofArray(bytes);
        float scale = bound / 32768f;
        for (long start = 0; start < n; start += CHUNK) {
            int len = (int) Math.min(CHUNK, n - start);
            for (int i = 0; i < len; i += 4) {
                long r = rnd.next();
                f[i] = center + (short) r * scale;
                f[i + 1] = center + (short) (r >>> 16) * scale;
                f[i + 2] = center + (short) (r >>> 32) * scale;
                f[i + 3] = center + (short) (r >>> 48) * scale;
            }
            for (int i = 0; i < len; i++) { // vectorised by C2
                h[i] = Float.floatToFloat16(f[i]);
            }
            MemorySegment.copy(h, 0, seg, SHORT_LE, 0, len);
            out.write(bytes, 0, 2 * len);
        }
    }

    /** Uniform in [-1, 1) from 16 bits. */
    private static float unit(SplitMix rnd) {
        return (short) rnd.next() / 32768f;
    }

    /** SplitMix64 (Steele, Lea, Flood 2014): one multiply-xorshift round per 64 random bits. */
    private static final class SplitMix {
        private long state;

        SplitMix(long seed) {
            this.state = seed;
        }

        long next() {
            long z = (state += 0x9E3779B97F4A7C15L);
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }
    }

    /** The stream seed of a tensor: FNV-1a of its name mixed into the run seed. */
    static long mix(long seed, String name) {
        long h = 0xcbf29ce484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x100000001b3L;
        }
        return new SplitMix(seed ^ h).next();
    }

    private static boolean isPositionIds(String name) {
        return name.equals(POSITION_IDS);
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    private static void requireSpace(Path file, long bytes) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new InputException(file + ": folder " + dir + " does not exist");
        }
        long free = Files.getFileStore(dir).getUsableSpace();
        long needed = bytes + (64L << 20);
        if (free < needed) {
            throw new InputException(String.format(Locale.ROOT, "%s: needs %.2f GB but only %.2f GB are free in %s",
                    file, needed / 1e9, free / 1e9, dir));
        }
    }
}
