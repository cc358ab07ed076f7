package tenmin.sample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.core.InputException;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder;
import tenmin.models.clip.ClipTokenizer;
import tenmin.models.clip.SdxlTextEncoders;

/**
 * Turns a prompt and its negative prompt into the U-Net's text conditioning the way A1111 does for SDXL
 * ({@code sd_hijack_clip}, {@code sd_models_xl}):
 * <ol>
 * <li>attention syntax and 75-token chunks ({@link PromptChunks}, {@link PromptChunks.Chunking#A1111});
 *     prompt and negative prompt keep their own lengths (A1111's default, {@code pad_cond_uncond} off: the U-Net
 *     then runs them as separate batches when the lengths differ); {@link Options#padCondUncond} pads the shorter
 *     with empty chunks instead, as kohya's pipeline and A1111's option do;
 * <li>each chunk runs through both encoders on its own: text encoder 1's penultimate states (ids padded with
 *     EOS) and text encoder 2's (padded with 0), no final LayerNorm;
 * <li>token weights are applied to each encoder's chunk output ({@link Emphasis}, by default A1111's
 *     "Original": multiply, then restore the chunk's mean; kohya's pipeline restores the mean of the whole
 *     context instead, {@link Options#kohya});
 * <li>context = for every chunk {@code [te1 | te2]} along the channels, chunks one after the other along the
 *     tokens: (77·chunks, C1 + C2); pooled = text encoder 2's projected end-of-text state of the first chunk,
 *     unweighted.
 * </ol>
 * With LoRA branches on the text encoders, the conditioning depends on their multipliers.
 */
public final class PromptEncoder {

    /**
     * How prompts are cut, weighted and pooled.
     *
     * @param chunking     chunk rules
     * @param emphasis     how token weights act
     * @param pooled       text encoder 2's projection orientation (SAI; kohya's transposed one on request)
     * @param wholeContext apply the weights to the whole context at once (all chunks, both encoders side by side,
     *                     one mean), as kohya's long-prompt pipeline does, instead of per chunk and encoder (A1111)
     * @param padCondUncond pad the shorter of prompt and negative prompt with empty chunks to the same length
     *                     (kohya's pipeline; A1111's "Pad prompt/negative prompt to be same length" option, off by
     *                     default there); without it a long negative prompt cannot change the conditional branch
     */
    public record Options(PromptChunks.Chunking chunking, Emphasis emphasis, ClipTextEncoder.PooledProjection pooled,
                          boolean wholeContext, boolean padCondUncond) {
        /** A1111 / Forge / ComfyUI-compatible defaults. */
        public static final Options A1111 = new Options(PromptChunks.Chunking.A1111, Emphasis.ORIGINAL,
                ClipTextEncoder.PooledProjection.SAI, false, false);

        /** These options with A1111's pad-cond-uncond setting switched to {@code pad}. */
        public Options withPadCondUncond(boolean pad) {
            return new Options(chunking, emphasis, pooled, wholeContext, pad);
        }

        /**
         * kohya sd-scripts' sample images (trainer-spec §11): plain 75-token windows without BREAK, at most 3
         * chunks, weights over the whole context; {@code pooled} as the run is configured.
         */
        public static Options kohya(ClipTextEncoder.PooledProjection pooled) {
            return new Options(PromptChunks.Chunking.KOHYA, Emphasis.ORIGINAL, pooled, true, true);
        }
    }

    /**
     * The text conditioning of one prompt.
     *
     * @param context (T, C1 + C2) row-major, T = 77·chunks
     * @param tokens  T
     * @param pooled  (P) text encoder 2's pooled vector
     */
    public record Embedding(float[] context, int tokens, float[] pooled) {
    }

    /** Conditional and unconditional embeddings (the same number of tokens when padded). */
    public record Pair(Embedding cond, Embedding uncond) {
    }

    /** {@code <lora:name:1>}-style extra-network tags of A1111 (handled there before the prompt is encoded). */
    private static final Pattern EXTRA_NETWORK = Pattern.compile("<(lora|lyco|hypernet|embedding):[^>]*>",
            Pattern.CASE_INSENSITIVE);
    /** A1111 prompt editing {@code [from:to:when]}, {@code [to:when]}, {@code [from::when]} (unescaped '['). */
    private static final Pattern EDITING = Pattern.compile("(?<!\\\\)\\[[^\\[\\]]*:\\s*[+-]?[\\d.]+\\s*]");
    /** A1111 alternation {@code [a|b]}. */
    private static final Pattern ALTERNATION = Pattern.compile("(?<!\\\\)\\[[^\\[\\]]*\\|[^\\[\\]]*]");

    private final SdxlModels models;
    private final Options options;

    public PromptEncoder(SdxlModels models, Options options) {
        this.models = models;
        this.options = options;
    }

    /**
     * Checks a prompt before any work: A1111 syntax tenmin does not implement is an error rather than text
     * fed to CLIP (extra-network tags such as {@code <lora:x:0.8>}, prompt editing {@code [a:b:0.5]},
     * alternation {@code [a|b]}), and attention weights must be numbers.
     *
     * @param where what to name in the message ({@code --prompt}, {@code prompts.txt line 3})
     * @throws InputException one line naming {@code where} and the offending text
     */
    public static void check(String prompt, String where, Options options) {
        Matcher m = EXTRA_NETWORK.matcher(prompt);
        if (m.find()) {
            String hint = m.group(1).equalsIgnoreCase("lora") || m.group(1).equalsIgnoreCase("lyco")
                    ? "; give LoRAs with --lora FILE[:STRENGTH[:BLOCKVECTOR]]" : "";
            throw new InputException(where + ": the A1111 tag " + m.group() + " is not supported in prompts" + hint);
        }
        m = EDITING.matcher(prompt);
        if (m.find()) {
            throw new InputException(where + ": A1111 prompt editing " + m.group() + " is not supported"
                    + " (escape literal brackets as \\[ \\])");
        }
        m = ALTERNATION.matcher(prompt);
        if (m.find()) {
            throw new InputException(where + ": A1111 alternation " + m.group() + " is not supported"
                    + " (escape literal brackets as \\[ \\])");
        }
        try {
            PromptAttention.parse(prompt, options.chunking().breakKeyword());
        } catch (InputException e) {
            throw new InputException(where + ": " + e.getMessage(), e);
        }
    }

    /** Encodes {@code prompt} and {@code negative} with the text encoders as they are now (LoRA branches included). */
    public Pair encode(Scope scope, String prompt, String negative) {
        ClipTokenizer tok = models.tokenizer();
        PromptChunks.Result cond = PromptChunks.of(prompt, tok, options.chunking());
        PromptChunks.Result uncond = PromptChunks.of(negative, tok, options.chunking());
        int condChunks = cond.chunks().size();
        int uncondChunks = uncond.chunks().size();
        if (options.padCondUncond()) {
            condChunks = uncondChunks = Math.max(condChunks, uncondChunks);
        }
        List<PromptChunks.Chunk> all = new ArrayList<>(cond.padTo(condChunks));
        all.addAll(uncond.padTo(uncondChunks));

        List<int[]> ids1 = new ArrayList<>();
        List<int[]> ids2 = new ArrayList<>();
        for (PromptChunks.Chunk c : all) {
            ids1.add(c.ids(ClipTokenizer.PAD_TE1));
            ids2.add(c.ids(ClipTokenizer.PAD_TE2));
        }
        float[] h1;       // (chunks, 77, C1), cond chunks then uncond chunks
        float[] h2;       // (chunks, 77, C2)
        float[] pooled;   // (chunks, P)
        try (Scope s = scope.child("text encoders")) {
            Functional f = Functional.inference(s);
            Tensor t1 = SdxlTextEncoders.ids(s, ids1);
            Tensor t2 = SdxlTextEncoders.ids(s, ids2);
            ClipTextEncoder te1 = models.textEncoders().te1();
            ClipTextEncoder te2 = models.textEncoders().te2();
            h1 = te1.forward(f, t1, false, false).penultimate().toHost();
            ClipTextEncoder.Hidden hidden2 = te2.forward(f, t2, true, false);
            h2 = hidden2.penultimate().toHost();
            pooled = te2.pooled(f, hidden2.last(), t2, options.pooled()).toHost();
        }
        int c1 = models.config().te1().width();
        int c2 = models.config().te2().width();
        int p = models.config().te2().projectionDim();
        return new Pair(assemble(all, 0, condChunks, h1, c1, h2, c2, pooled, p),
                assemble(all, condChunks, uncondChunks, h1, c1, h2, c2, pooled, p));
    }

    /** Chunks {@code [first, first + count)} weighted and laid out as one (77·count, C1 + C2) context. */
    private Embedding assemble(List<PromptChunks.Chunk> all, int first, int count, float[] h1, int c1, float[] h2,
                               int c2, float[] pooledAll, int p) {
        int t = ClipTokenizer.CONTEXT_LENGTH;
        int c = c1 + c2;
        float[] context = new float[count * t * c];
        float[] multipliers = new float[count * t];
        boolean weighted = false;
        for (int k = 0; k < count; k++) {
            int chunk = first + k;
            float[] m = all.get(chunk).multipliers();
            System.arraycopy(m, 0, multipliers, k * t, t);
            weighted |= !all.get(chunk).unweighted();
            float[] a = Arrays.copyOfRange(h1, chunk * t * c1, (chunk + 1) * t * c1);
            float[] b = Arrays.copyOfRange(h2, chunk * t * c2, (chunk + 1) * t * c2);
            if (!options.wholeContext() && !all.get(chunk).unweighted()) {
                options.emphasis().apply(a, m, c1);
                options.emphasis().apply(b, m, c2);
            }
            for (int j = 0; j < t; j++) {
                int row = (k * t + j) * c;
                System.arraycopy(a, j * c1, context, row, c1);
                System.arraycopy(b, j * c2, context, row + c1, c2);
            }
        }
        if (options.wholeContext() && weighted) {
            options.emphasis().apply(context, multipliers, c);
        }
        float[] pooled = Arrays.copyOfRange(pooledAll, first * p, (first + 1) * p);
        return new Embedding(context, count * t, pooled);
    }
}
