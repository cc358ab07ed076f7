package tenmin.models.clip;

import java.util.List;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.models.nn.AdaptableLayer;
import tenmin.models.nn.CheckpointParams;
import tenmin.models.nn.Params;

/**
 * SDXL's text conditioning (trainer-spec §4.2): text encoder 1 (CLIP ViT-L/14) and text encoder 2
 * (OpenCLIP ViT-bigG/14) run on one 77-token chunk each; the U-Net context is
 * {@code cat(te1 penultimate, te2 penultimate)} on the last dimension (N, T, 2048) and the pooled vector
 * (N, 1280) comes from text encoder 2's final LayerNorm at the first end-of-text token.
 *
 * <p>Both encoders run with gradients when given a training {@link Functional}, so LoRA adapters on
 * their layers are trained. Text encoder 1's last layer does not influence its penultimate output:
 * adapters there get no gradient ({@link #layersWithoutGradient()}, fixtures README Q4).
 */
public final class SdxlTextEncoders {

    /**
     * How {@link #encode} runs.
     *
     * @param pooled        pooled projection orientation (SAI by default, kohya's transpose on request)
     * @param checkpointing recompute each transformer layer during backward (memory for time)
     */
    public record Options(ClipTextEncoder.PooledProjection pooled, boolean checkpointing) {
        /** SAI orientation, no checkpointing. */
        public static final Options DEFAULT = new Options(ClipTextEncoder.PooledProjection.SAI, false);

        public Options {
            if (pooled == null) {
                throw new IllegalArgumentException("pooled projection orientation is required");
            }
        }
    }

    /**
     * Encoder outputs for a batch of prompts.
     *
     * @param context (N, T, C1 + C2): the U-Net's cross-attention context
     * @param pooled  (N, projection): text encoder 2's pooled vector (the first 1280 entries of the U-Net's {@code y})
     */
    public record Conditioning(Tensor context, Tensor pooled) {
    }

    private final ClipTextEncoder te1;
    private final ClipTextEncoder te2;

    public SdxlTextEncoders(ClipTextEncoder te1, ClipTextEncoder te2) {
        if (!te2.config().hasProjection()) {
            throw new IllegalArgumentException("text encoder 2 needs a text_projection");
        }
        this.te1 = te1;
        this.te2 = te2;
    }

    /** Both encoders from {@link Params} rooted at their key prefixes (checkpoint, meta or random). */
    public static SdxlTextEncoders build(Params te1Root, Params te2Root, ClipTextConfig te1, ClipTextConfig te2) {
        return new SdxlTextEncoders(ClipTextEncoder.hf(te1Root, te1), ClipTextEncoder.openClip(te2Root, te2));
    }

    /**
     * Both encoders of the single-file SDXL checkpoint {@code file} (fp16, bf16 or fp32), with weights
     * stored as {@code dtype} in {@code scope}. A missing or mis-shaped key is an
     * {@link tenmin.core.InputException} naming the file and the key.
     */
    public static SdxlTextEncoders load(SafetensorsFile file, Scope scope, DType dtype, ClipTextConfig te1,
                                        ClipTextConfig te2) {
        return build(CheckpointParams.of(file, ClipKeys.TE1_PREFIX, scope, dtype),
                CheckpointParams.of(file, ClipKeys.TE2_PREFIX, scope, dtype), te1, te2);
    }

    /** {@link #load(SafetensorsFile, Scope, DType, ClipTextConfig, ClipTextConfig)} with the real SDXL sizes. */
    public static SdxlTextEncoders load(SafetensorsFile file, Scope scope, DType dtype) {
        return load(file, scope, dtype, ClipTextConfig.SDXL_TE1, ClipTextConfig.SDXL_TE2);
    }

    public ClipTextEncoder te1() {
        return te1;
    }

    public ClipTextEncoder te2() {
        return te2;
    }

    /**
     * Encodes one chunk per prompt: ids (N, T) I64 for each encoder (TE1 padded with 49407, TE2 with 0,
     * see {@link ClipTokenizer}). Results live in {@code f}'s scope, in the weights' dtype.
     */
    public Conditioning encode(Functional f, Tensor idsTe1, Tensor idsTe2, Options options) {
        return encode(f, idsTe1, idsTe2, null, options);
    }

    /**
     * {@link #encode(Functional, Tensor, Tensor, Options)} with text encoder 2's ids also as the host has them
     * ({@code te2HostIds}, N·T row-major, or null to read them back): the pooled token is then found without a
     * download, which on a GPU would wait for the encoders to finish.
     */
    public Conditioning encode(Functional f, Tensor idsTe1, Tensor idsTe2, long[] te2HostIds, Options options) {
        if (!idsTe1.shape().equals(idsTe2.shape())) {
            throw new IllegalArgumentException("text encoder ids differ in shape: te1 " + idsTe1.describe() + ", te2 "
                    + idsTe2.describe());
        }
        ClipTextEncoder.Hidden h1 = te1.forward(f, idsTe1, false, options.checkpointing());
        ClipTextEncoder.Hidden h2 = te2.forward(f, idsTe2, true, options.checkpointing());
        Tensor context = f.cat(-1, h1.penultimate(), h2.penultimate());         // (N, T, C1 + C2)
        Tensor pooled = te2HostIds != null ? te2.pooled(f, h2.last(), te2HostIds, options.pooled())
                : te2.pooled(f, h2.last(), idsTe2, options.pooled());              // (N, projection)
        return new Conditioning(context, pooled);
    }

    /**
     * Adaptable layers whose adapters never receive gradient from {@link #encode}: text encoder 1's last
     * transformer layer (its output is not the penultimate state). Their LoRA gradients stay exactly zero;
     * the optimizer should skip them as sd-scripts' does ({@code .grad is None}: no update, no weight
     * decay, not in the gradient-norm clip).
     */
    public List<AdaptableLayer> layersWithoutGradient() {
        return te1.adaptableLayers(te1.layerCount() - 1);
    }

    /** Token ids (N, T) I64 in {@code scope} from tokenizer rows (e.g. {@link ClipTokenizer.Tokens#ids()}). */
    public static Tensor ids(Scope scope, List<int[]> rows) {
        return scope.fromHost(hostIds(rows), rows.size(), rows.get(0).length);
    }

    /** Tokenizer rows of equal length T as one N·T row-major array (what {@link #ids} uploads). */
    public static long[] hostIds(List<int[]> rows) {
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("no token rows");
        }
        int t = rows.get(0).length;
        long[] data = new long[rows.size() * t];
        for (int b = 0; b < rows.size(); b++) {
            int[] r = rows.get(b);
            if (r.length != t) {
                throw new IllegalArgumentException("token row " + b + " has " + r.length + " ids, row 0 has " + t);
            }
            for (int j = 0; j < t; j++) {
                data[b * t + j] = r[j];
            }
        }
        return data;
    }
}
