package tenmin.models;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.models.clip.ClipKeys;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.clip.ClipTokenizer;
import tenmin.models.clip.SdxlTextEncoders;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.MetaParams;
import tenmin.models.nn.Params;
import tenmin.models.nn.RandomParams;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.models.sdxl.Unet;
import tenmin.models.vae.Vae;
import tenmin.models.vae.VaeKeys;

/**
 * The four SDXL networks of one checkpoint, loaded together, and the text-conditioning step that turns
 * captions into what the U-Net reads (trainer-spec §4):
 *
 * <pre>{@code
 * try (SdxlModels m = SdxlModels.load(checkpoint, SdxlConfig.sdxl(), processScope, SdxlDtypes.of(device, "bf16"))) {
 *     SdxlModels.Conditioning c = m.condition(f, captions, sizes, PooledProjection.SAI, false);
 *     Tensor eps = m.unet().forward(f, xT, timesteps, c.context(), c.y());      // (N, 4, h, w) F32
 * }
 * }</pre>
 *
 * <p>Each network's weights live in their own child scope of the scope given at load time ("unet weights",
 * "text encoder weights", "vae weights"), frozen, in the dtypes {@link SdxlDtypes} chose (with {@code --fp8_base}, the
 * U-Net's and the text encoders' as fp8 e4m3fn); {@link #close} releases all of them. LoRA networks attach to the layers ({@code unet().layers()},
 * {@code textEncoders().te1().adaptableLayers()}) and are owned by the caller.
 */
public final class SdxlModels implements AutoCloseable {
    private final SdxlConfig config;
    private final SdxlDtypes dtypes;
    private final Unet unet;
    private final SdxlTextEncoders textEncoders;
    private final Vae vae;
    private final ClipTokenizer tokenizer;
    private final List<Scope> scopes;

    private SdxlModels(SdxlConfig config, SdxlDtypes dtypes, Unet unet, SdxlTextEncoders textEncoders, Vae vae,
                       List<Scope> scopes) {
        this.config = config;
        this.dtypes = dtypes;
        this.unet = unet;
        this.textEncoders = textEncoders;
        this.vae = vae;
        this.tokenizer = ClipTokenizer.shared();
        this.scopes = List.copyOf(scopes);
    }

    /** Where each network's weights come from, given the scope that will own them and how they are kept. */
    @FunctionalInterface
    private interface Source {
        Params at(String keyPrefix, Scope scope, Params.Storage storage);
    }

    /**
     * Loads the U-Net, both text encoders and the VAE from a single-file SDXL checkpoint (SAI layout:
     * {@code model.diffusion_model.}, {@code conditioner.embedders.0.transformer.},
     * {@code conditioner.embedders.1.model.}, {@code first_stage_model.}), reading tensor by tensor from the
     * memory-mapped file and converting each to the component's dtype (fp8, fp16, bf16 and fp32 files all work; with
     * fp8 weights ({@link SdxlDtypes#withFp8Base}) each value is rounded to fp8 as it is read).
     *
     * @throws tenmin.core.InputException naming the file and key when a tensor is missing or mis-shaped;
     *                                    nothing stays allocated then
     */
    public static SdxlModels load(Path checkpoint, SdxlConfig config, Scope parent, SdxlDtypes dtypes) {
        return load(checkpoint, null, config, parent, dtypes);
    }

    /**
     * {@link #load(Path, SdxlConfig, Scope, SdxlDtypes)} with the VAE read from {@code vae} instead (when not null):
     * a single file in the LDM layout, its keys with or without the {@code first_stage_model.} prefix (what the
     * reference's {@code load_vae} reads). A diffusers-layout file is refused, naming it.
     */
    public static SdxlModels load(Path checkpoint, Path vae, SdxlConfig config, Scope parent, SdxlDtypes dtypes) {
        try (SafetensorsFile file = SafetensorsFile.open(checkpoint);
             SafetensorsFile vaeFile = vae == null ? null : SafetensorsFile.open(vae)) {
            SafetensorsFile vaeSource = vaeFile == null ? file : vaeFile;
            String vaePrefix = vaeFile == null ? VaeKeys.PREFIX : ldmVaePrefix(vaeFile);
            if (parent.backend().storesOnJavaHeap()) {
                checkHeap(checkpoint + ": ", weightBytes(config, file, dtypes)[0]);
            }
            return build(config, parent, dtypes, (prefix, scope, storage) -> prefix.equals(VaeKeys.PREFIX)
                    ? CheckpointParams.of(vaeSource, vaePrefix, scope, storage)
                    : CheckpointParams.of(file, prefix, scope, storage));
        }
    }

    /** The key prefix of a separate VAE file: {@code first_stage_model.} or none; a diffusers layout is refused. */
    private static String ldmVaePrefix(SafetensorsFile vaeFile) {
        boolean prefixed = false;
        for (String k : vaeFile.names()) {
            if (k.contains("down_blocks.") || k.contains("mid_block.")) {
                throw new InputException(vaeFile.path() + ": a diffusers-layout VAE (key " + k + "); give its single-file"
                        + " LDM-layout version, such as sdxl_vae.safetensors");
            }
            prefixed |= k.startsWith(VaeKeys.PREFIX);
        }
        return prefixed ? VaeKeys.PREFIX : "";
    }

    /**
     * A model built in memory with seeded random weights ({@link RandomParams}: the fixtures' scales, each
     * tensor a function of the seed and its key only, so every backend builds the same model).
     */
    public static SdxlModels random(SdxlConfig config, Scope parent, SdxlDtypes dtypes, long seed) {
        if (parent.backend().storesOnJavaHeap()) {
            checkHeap("random model: ", weightBytes(config, null, dtypes)[0]);
        }
        return build(config, parent, dtypes, (prefix, scope, storage) -> RandomParams.of(prefix, scope, storage, seed));
    }

    /**
     * Writes the model {@link #random} builds from {@code config} and {@code seed} as a single-file checkpoint in SAI's
     * layout (the keys {@link #load} reads; each tensor rounded to {@code dtype}, written atomically), so that tools
     * that take a checkpoint file ({@code resize}, {@code merge}, {@code sample --model}) can run on it: the built-in
     * demo's base model. Tensors are made one at a time in {@code parent}'s backend and released.
     */
    public static void writeRandomCheckpoint(SdxlConfig config, long seed, StDType dtype, Map<String, String> metadata,
                                             Path file, Scope parent) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(metadata);
        try (Scope scope = parent.child("random checkpoint")) {
            for (MetaParams p : metaParams(config)) {
                Params root = RandomParams.of(p.keyPrefix(), scope, DType.F32, seed);
                for (Map.Entry<String, Shape> e : p.shapes().entrySet()) {
                    String rest = e.getKey().substring(p.keyPrefix().length());  // module path and tensor name
                    int dot = rest.lastIndexOf('.');
                    Params module = dot < 0 ? root : root.at(rest.substring(0, dot));
                    String name = rest.substring(dot + 1);
                    try (Tensor t = module.get(name, e.getValue())) {     // fp32: embeddings the same as the rest
                        w.addFloats(e.getKey(), dtype, e.getValue().dimsLong(), t.toHost());
                    }
                }
            }
        }
        w.write(file);
    }

    private static SdxlModels build(SdxlConfig config, Scope parent, SdxlDtypes dtypes, Source source) {
        List<Scope> scopes = new ArrayList<>();
        try {
            Scope unetScope = child(parent, "unet weights", scopes);
            Unet unet = new Unet(config.unet(), source.at(Unet.KEY_PREFIX, unetScope, dtypes.unetStorage()),
                    Unet.Precision.of(dtypes.unet()));
            Scope teScope = child(parent, "text encoder weights", scopes);
            SdxlTextEncoders te = SdxlTextEncoders.build(
                    source.at(ClipKeys.TE1_PREFIX, teScope, dtypes.textEncoderStorage()),
                    source.at(ClipKeys.TE2_PREFIX, teScope, dtypes.textEncoderStorage()), config.te1(), config.te2());
            Scope vaeScope = child(parent, "vae weights", scopes);
            Vae vae = new Vae(source.at(VaeKeys.PREFIX, vaeScope, dtypes.vaeStorage()), config.vae());
            return new SdxlModels(config, dtypes, unet, te, vae, scopes);
        } catch (RuntimeException e) {
            for (Scope s : scopes.reversed()) {
                s.close();
            }
            throw e;
        }
    }

    private static Scope child(Scope parent, String name, List<Scope> scopes) {
        Scope s = parent.child(name);
        scopes.add(s);
        return s;
    }

    public SdxlConfig config() {
        return config;
    }

    public SdxlDtypes dtypes() {
        return dtypes;
    }

    public Unet unet() {
        return unet;
    }

    public SdxlTextEncoders textEncoders() {
        return textEncoders;
    }

    public Vae vae() {
        return vae;
    }

    /** The CLIP tokenizer both encoders share (TE1 pads with 49407, TE2 with 0). */
    public ClipTokenizer tokenizer() {
        return tokenizer;
    }

    /** Bytes of every frozen weight now allocated (U-Net, text encoders, VAE). */
    public long weightBytes() {
        long n = 0;
        for (Scope s : scopes) {
            n += s.liveBytes();
        }
        return n;
    }

    /** Releases every weight. Idempotent. */
    @Override
    public void close() {
        RuntimeException failure = null;
        for (Scope s : scopes.reversed()) {
            try {
                s.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    // ---- text conditioning ------------------------------------------------------------------------

    /**
     * What the U-Net reads for a batch of prompts.
     *
     * @param context (N, 77, C1 + C2) cross-attention context: TE1 and TE2 penultimate states side by side
     *                ((N, 77, 2048) on SDXL), in the text encoders' dtype
     * @param pooled  (N, P) text encoder 2's pooled, projected vector ((N, 1280) on SDXL)
     * @param y       (N, P + 1536) F32: pooled and the six size embeddings ((N, 2816) on SDXL)
     */
    public record Conditioning(Tensor context, Tensor pooled, Tensor y) {
    }

    /** Token ids of one batch for both encoders: (N, 77) I64 each, in the scope given. */
    public record TokenIds(Tensor te1, Tensor te2) {
    }

    /**
     * Tokenises captions for both encoders (trainer-spec §4.1): {@code [BOS, ≤75 tokens, EOS, pad...]}, TE1
     * padded with 49407 and TE2 with 0, longer captions cut.
     */
    public TokenIds tokenize(Scope scope, List<String> captions) {
        List<List<int[]>> rows = tokenRows(captions, ClipTokenizer.MAX_BPE_TOKENS);
        return new TokenIds(SdxlTextEncoders.ids(scope, rows.get(0)), SdxlTextEncoders.ids(scope, rows.get(1)));
    }

    /**
     * The tokenizer rows of both encoders, [TE1 rows, TE2 rows]: per caption its windows for
     * {@code maxTokenLength} ({@link ClipTokenizer#windows}; one row at 75), caption-major.
     */
    private List<List<int[]>> tokenRows(List<String> captions, int maxTokenLength) {
        List<int[]> te1 = new ArrayList<>();
        List<int[]> te2 = new ArrayList<>();
        for (String c : captions) {
            int[] bpe = tokenizer.encode(c);
            te1.addAll(List.of(ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE1, maxTokenLength)));
            te2.addAll(List.of(ClipTokenizer.windows(bpe, ClipTokenizer.PAD_TE2, maxTokenLength)));
        }
        return List.of(te1, te2);
    }

    /**
     * The conditioning of a training batch: captions → ids for both tokenizers → context and pooled (with
     * gradients through the text-encoder adapters when {@code f} records) → y with the size conditioning.
     *
     * @param captions      one caption per image (already prefixed and shuffled)
     * @param sizes         one row per image: (orig_h, orig_w, crop_top, crop_left, target_h, target_w) in pixels
     * @param pooled        text encoder 2's projection orientation (SAI by default, kohya's on request)
     * @param checkpointing recompute text-encoder layers in the backward
     */
    public Conditioning condition(Functional f, List<String> captions, List<int[]> sizes, PooledProjection pooled,
                                  boolean checkpointing) {
        return condition(f, captions, sizes, pooled, checkpointing, ClipTokenizer.MAX_BPE_TOKENS);
    }

    /**
     * {@link #condition(Functional, List, List, PooledProjection, boolean)} with sd-scripts'
     * {@code --max_token_length} ({@code get_hidden_states_sdxl}; trainer-spec §4.1): 75 as there; 150 or 225 run
     * each caption's W = maxTokenLength / 75 windows ({@link ClipTokenizer#windows}) through both encoders and join
     * the states as BOS of window 0, positions 1-75 of every window, and the last position of the last window
     * (N, 2 + maxTokenLength, C1 + C2); the pooled vector is window 0's.
     */
    public Conditioning condition(Functional f, List<String> captions, List<int[]> sizes, PooledProjection pooled,
                                  boolean checkpointing, int maxTokenLength) {
        if (captions.size() != sizes.size()) {
            throw new IllegalArgumentException(captions.size() + " captions but " + sizes.size() + " size conditions");
        }
        List<List<int[]>> rows = tokenRows(captions, maxTokenLength);
        Tensor te1 = SdxlTextEncoders.ids(f.scope(), rows.get(0));                      // (N·W, 77) upload
        Tensor te2 = SdxlTextEncoders.ids(f.scope(), rows.get(1));                      // (N·W, 77) upload
        SdxlTextEncoders.Conditioning c = textEncoders.encode(f, te1, te2, SdxlTextEncoders.hostIds(rows.get(1)),
                new SdxlTextEncoders.Options(pooled, checkpointing));
        Tensor context = c.context();                                                   // (N·W, 77, C)
        Tensor pooledVector = c.pooled();                                               // (N·W, P)
        int windows = rows.get(0).size() / captions.size();
        if (windows > 1) {
            int n = captions.size();
            int t = ClipTokenizer.CONTEXT_LENGTH;
            Tensor joined = f.reshape(context, n, windows * t, context.shape().dim(2));
            List<Tensor> parts = new ArrayList<>();
            parts.add(f.narrow(joined, 1, 0, 1));                                       // BOS of window 0
            for (int w = 0; w < windows; w++) {
                parts.add(f.narrow(joined, 1, w * t + 1, ClipTokenizer.MAX_BPE_TOKENS));
            }
            parts.add(f.narrow(joined, 1, windows * t - 1, 1));                         // last of the last window
            context = f.cat(parts, 1);                                                  // (N, 2 + 75·W, C)
            int p = pooledVector.shape().dim(1);
            pooledVector = f.reshape(f.narrow(f.reshape(pooledVector, n, windows, p), 1, 0, 1), n, p); // window 0
        }
        Tensor y = SdxlConditioning.vector(f, pooledVector, SdxlConditioning.sizeTensor(f.scope(), sizes)); // (N, P+1536)
        return new Conditioning(context, pooledVector, y);
    }

    // ---- sizes without allocating ---------------------------------------------------------------

    /**
     * Refuses, before anything is allocated, a model whose fp32 weights ({@code need} bytes) would not fit
     * in the {@code available} bytes of a Java heap limited to {@code max}: the cpu backend holds every
     * weight as a float, so full SDXL needs about 14 GB there (see docs/MEMORY.md).
     *
     * @throws InputException with the sizes and the two ways out (a GPU, or a larger heap)
     */
    private static void checkHeap(String what, long need) {
        Runtime rt = Runtime.getRuntime();
        try {
            checkHeap(need, rt.maxMemory() - (rt.totalMemory() - rt.freeMemory()), rt.maxMemory());
        } catch (InputException e) {
            throw new InputException(what + e.getMessage());
        }
    }

    /**
     * Bytes the cpu backend holds for the model's weights from {@code file} kept as {@code dtypes} say (fp32 there,
     * or fp8): {on the Java heap, off it}. fp8 weights, and fp8, fp16 and bf16 tensors read as fp32, stay in 8 or 16
     * bits in native memory ({@link tenmin.engine.api.Backend#frozenFromHostBytes}); the others are float arrays on
     * the heap. With {@code file} null, a random model's: every tensor made as fp32.
     */
    static long[] weightBytes(SdxlConfig config, SafetensorsFile file, SdxlDtypes dtypes) {
        long heap = 0;
        long offHeap = 0;
        List<MetaParams> params = metaParams(config);
        List<Params.Storage> storages = storages(dtypes);
        for (int i = 0; i < params.size(); i++) {
            MetaParams p = params.get(i);
            for (Map.Entry<String, Shape> e : p.shapes().entrySet()) {
                long n = e.getValue().numel();
                StDType st = file != null && file.contains(e.getKey()) ? file.info(e.getKey()).dtype() : StDType.F32;
                if (storages.get(i).fp8() && !p.embeddings().contains(e.getKey())) {
                    offHeap += n;
                } else if (st == StDType.F16 || st == StDType.BF16 || st == StDType.F8_E4M3) {
                    offHeap += st.sizeBytes() * n;
                } else {
                    heap += 4 * n;
                }
            }
        }
        return new long[] {heap, offHeap};
    }

    /** The storage of each of {@link #metaParams}' four networks. */
    private static List<Params.Storage> storages(SdxlDtypes dtypes) {
        return List.of(dtypes.unetStorage(), dtypes.textEncoderStorage(), dtypes.textEncoderStorage(),
                dtypes.vaeStorage());
    }

    /** The U-Net, text encoder 1, text encoder 2 and VAE parameter requests of {@code config}, shapes only. */
    private static List<MetaParams> metaParams(SdxlConfig config) {
        MetaParams u = MetaParams.of(Unet.KEY_PREFIX);
        new Unet(config.unet(), u, Unet.Precision.of(DType.F32));
        MetaParams t1 = MetaParams.of(ClipKeys.TE1_PREFIX);
        MetaParams t2 = MetaParams.of(ClipKeys.TE2_PREFIX);
        SdxlTextEncoders.build(t1, t2, config.te1(), config.te2());
        MetaParams v = MetaParams.of(VaeKeys.PREFIX);
        new Vae(v, config.vae());
        return List.of(u, t1, t2, v);
    }

    static void checkHeap(long need, long available, long max) {
        long margin = need / 10 + (256L << 20); // the first activations and the JVM's own overhead
        if (need + margin <= available) {
            return;
        }
        long suggestGiB = (need + margin + (max - available) + (1L << 30) - 1) >> 30;
        throw new InputException(String.format(java.util.Locale.ROOT, "the model's weights need %.1f GB as fp32 on"
                        + " the cpu backend, more than the %.1f GB this Java process may still use (heap limit %.1f GB);"
                        + " run it on a GPU (--device cuda) or, with that much memory, raise the limit:"
                        + " TENMIN_JAVA_OPTS=-Xmx%dg", need / 1e9, available / 1e9, max / 1e9, suggestGiB));
    }

    /**
     * Bytes of each network's weights for {@code config} kept as {@code dtypes} say (fp8 weights: one byte a value,
     * the text encoders' embeddings in their run dtype), computed from the key list alone (nothing is allocated, so
     * the real SDXL sizes are cheap): keys "unet", "text encoders", "vae".
     */
    public static Map<String, Long> plannedWeightBytes(SdxlConfig config, SdxlDtypes dtypes) {
        Map<String, Long> out = new LinkedHashMap<>();
        List<MetaParams> p = metaParams(config);
        out.put("unet", p.get(0).bytes(dtypes.unetStorage()));
        out.put("text encoders", p.get(1).bytes(dtypes.textEncoderStorage()) + p.get(2).bytes(dtypes.textEncoderStorage()));
        out.put("vae", p.get(3).bytes(dtypes.vaeStorage()));
        return out;
    }
}
