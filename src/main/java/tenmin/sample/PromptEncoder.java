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
 *     the shorter of prompt and negative prompt is padded with empty chunks so both have the same length;
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
     */
    public record Options(PromptChunks.Chunking chunking, Emphasis emphasis, ClipTextEncoder.PooledProjection pooled,
                          boolean wholeContext) {
        /** A1111 / Forge / ComfyUI-compatible defaults. */
        public static final Options A1111 = new Options(PromptChunks.Chunking.A1111, Emphasis.ORIGINAL,
                ClipTextEncoder.PooledProjection.SAI, false);

        /**
         * kohya sd-scripts' sample images (trainer-spec §11): plain 75-token windows without BREAK, at most 3
         * chunks, weights over the whole context; {@code pooled} as the run is configured.
         */
        public static Options kohya(ClipTextEncoder.PooledProjection pooled) {
            return new Options(PromptChunks.Chunking.KOHYA, Emphasis.ORIGINAL, pooled, true);
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

    /** Conditional and unconditional embeddings with the same number of tokens. */
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
        int chunks = Math.max(cond.chunks().size(), uncond.chunks().size());
        List<PromptChunks.Chunk> all = new ArrayList<>(cond.padTo(chunks));
        all.addAll(uncond.padTo(chunks));

        List<int[]> ids1 = new ArrayList<>();
        List<int[]> ids2 = new ArrayList<>();
        for (PromptChunks.Chunk c : all) {
            ids1.add(c.ids(ClipTokenizer.PAD_TE1));
            ids2.add(c.ids(ClipTokenizer.PAD_TE2));
        }
        float[] h1;       // (2·chunks, 77, C1)
        float[] h2;       // (2·chunks, 77, C2)
        float[] pooled;   // (2·chunks, P)
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
        return new Pair(assemble(all, 0, chunks, h1, c1, h2, c2, pooled, p),
                assemble(all, chunks, chunks, h1, c1, h2, c2, pooled, p));
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
