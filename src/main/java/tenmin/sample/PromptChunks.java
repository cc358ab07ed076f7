package tenmin.sample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import tenmin.models.clip.ClipTokenizer;

/**
 * A weighted prompt cut into 77-token chunks for the CLIP encoders, as A1111 does for prompts of any
 * length ({@code sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line}): the pieces of
 * {@link PromptAttention} are tokenized one by one (no truncation), their tokens fill chunks of 75, and
 * every chunk becomes {@code [BOS, 75 tokens or EOS padding, EOS]} with a multiplier per token (1.0 on
 * BOS, EOS and padding). The encoder sees each chunk separately; the hidden states of all chunks are
 * concatenated along the token axis, and the pooled output of encoder 2 comes from the first chunk.
 *
 * <p>Chunk boundaries (see {@link Chunking}):
 * <ul>
 * <li>{@code BREAK} closes the current chunk (even an empty one) and starts the next.
 * <li>Comma back-off ({@code comma_padding_backtrack}, 20 in A1111): when a chunk is full and the next
 *     token is not a comma, the tokens after the chunk's last comma move to the next chunk if there are at
 *     most that many of them, so a tag is not split across chunks. 0 turns it off and gives plain 75-token
 *     windows, which is what kohya's long-prompt pipeline ({@code sdxl_lpw_stable_diffusion}) cuts.
 * </ul>
 *
 * <p>Both encoders get the same chunks; only the ids after the first EOS differ: encoder 1 keeps EOS,
 * encoder 2 gets 0 there ({@link Chunk#ids(int)}, A1111 {@code process_tokens} for {@code id_pad != id_end}).
 */
public final class PromptChunks {
    /** Tokens of prompt text per chunk. */
    public static final int CHUNK_TOKENS = ClipTokenizer.MAX_BPE_TOKENS;

    /**
     * How a prompt is cut.
     *
     * @param commaBacktrack A1111's {@code comma_padding_backtrack}; 0 = plain 75-token windows
     * @param breakKeyword whether {@code BREAK} starts a new chunk
     * @param maxChunks chunks kept (0 = all); kohya's pipeline keeps 3 (225 tokens)
     */
    public record Chunking(int commaBacktrack, boolean breakKeyword, int maxChunks) {
        /** A1111 / Forge defaults. */
        public static final Chunking A1111 = new Chunking(20, true, 0);
        /** kohya sd-scripts' sample images: plain windows, no BREAK, at most 3 chunks (trainer-spec §11). */
        public static final Chunking KOHYA = new Chunking(0, false, 3);

        public Chunking {
            if (commaBacktrack < 0 || commaBacktrack > CHUNK_TOKENS) {
                throw new IllegalArgumentException("commaBacktrack must be in 0.." + CHUNK_TOKENS + ": " + commaBacktrack);
            }
            if (maxChunks < 0) {
                throw new IllegalArgumentException("maxChunks must be >= 0: " + maxChunks);
            }
        }
    }

    /** One 77-token chunk: ids as A1111 builds them (EOS padding) and the multiplier of each position. */
    public record Chunk(int[] tokens, float[] multipliers) {
        public Chunk {
            if (tokens.length != ClipTokenizer.CONTEXT_LENGTH || multipliers.length != tokens.length) {
                throw new IllegalArgumentException("a chunk has " + ClipTokenizer.CONTEXT_LENGTH + " tokens and multipliers");
            }
            tokens = tokens.clone();
            multipliers = multipliers.clone();
        }

        @Override
        public int[] tokens() {
            return tokens.clone();
        }

        @Override
        public float[] multipliers() {
            return multipliers.clone();
        }

        /**
         * The ids fed to one encoder: with {@code padId} = EOS the tokens as they are; with another pad id
         * (encoder 2: 0) every position after the first EOS becomes {@code padId}.
         */
        public int[] ids(int padId) {
            int[] out = tokens.clone();
            if (padId != ClipTokenizer.EOS) {
                int eos = 0;
                while (out[eos] != ClipTokenizer.EOS) {
                    eos++;
                }
                Arrays.fill(out, eos + 1, out.length, padId);
            }
            return out;
        }

        /** Whether every multiplier is 1 (the encoder output needs no re-weighting). */
        public boolean unweighted() {
            for (float m : multipliers) {
                if (m != 1f) {
                    return false;
                }
            }
            return true;
        }

        /** A1111's {@code empty_chunk}: BOS then EOS, all multipliers 1 (pads a shorter prompt's chunk list). */
        public static Chunk empty() {
            int[] t = new int[ClipTokenizer.CONTEXT_LENGTH];
            Arrays.fill(t, ClipTokenizer.EOS);
            t[0] = ClipTokenizer.BOS;
            float[] m = new float[t.length];
            Arrays.fill(m, 1f);
            return new Chunk(t, m);
        }
    }

    /**
     * The chunks of one prompt and its token count as A1111's counter shows it (75 per chunk before the
     * last, plus the tokens of the last).
     */
    public record Result(List<Chunk> chunks, int tokenCount) {
        public Result {
            chunks = List.copyOf(chunks);
        }

        /** (chunks, 77) the ids for one encoder ({@link Chunk#ids(int)}); chunk 0 gives encoder 2's pooled output. */
        public int[][] ids(int padId) {
            int[][] out = new int[chunks.size()][];
            for (int i = 0; i < out.length; i++) {
                out[i] = chunks.get(i).ids(padId);
            }
            return out;
        }

        /** (chunks, 77) the multiplier of every position. */
        public float[][] multipliers() {
            float[][] out = new float[chunks.size()][];
            for (int i = 0; i < out.length; i++) {
                out[i] = chunks.get(i).multipliers();
            }
            return out;
        }

        /** These chunks followed by empty chunks up to {@code count} (cond/uncond of different lengths). */
        public List<Chunk> padTo(int count) {
            List<Chunk> out = new ArrayList<>(chunks);
            while (out.size() < count) {
                out.add(Chunk.empty());
            }
            return out;
        }
    }

    private PromptChunks() {
    }

    /** Parses {@code prompt} and cuts it with A1111's rules. */
    public static Result of(String prompt, ClipTokenizer tokenizer) {
        return of(prompt, tokenizer, Chunking.A1111);
    }

    /** Parses {@code prompt} ({@link PromptAttention}) and cuts it into chunks. */
    public static Result of(String prompt, ClipTokenizer tokenizer, Chunking chunking) {
        return of(PromptAttention.parse(prompt, chunking.breakKeyword()), tokenizer, chunking);
    }

    /** Cuts already parsed pieces into chunks. */
    public static Result of(List<PromptAttention.Piece> pieces, ClipTokenizer tokenizer, Chunking chunking) {
        Builder b = new Builder(tokenizer.id(",</w>"), chunking.commaBacktrack());
        for (PromptAttention.Piece piece : pieces) {
            if (chunking.breakKeyword() && piece.isBreak()) {
                b.nextChunk(false);
                continue;
            }
            float weight = (float) piece.weight();
            for (int token : tokenizer.encode(piece.text())) {
                b.add(token, weight);
            }
        }
        b.finish();
        List<Chunk> chunks = b.chunks;
        if (chunking.maxChunks() > 0 && chunks.size() > chunking.maxChunks()) {
            chunks = chunks.subList(0, chunking.maxChunks());
        }
        return new Result(chunks, b.tokenCount);
    }

    /** The state of A1111's {@code tokenize_line} loop. */
    private static final class Builder {
        final int comma;
        final int backtrack;
        final List<Chunk> chunks = new ArrayList<>();
        int[] tokens = new int[CHUNK_TOKENS];
        float[] mults = new float[CHUNK_TOKENS];
        int size;
        int lastComma = -1;
        int tokenCount;

        Builder(int comma, int backtrack) {
            this.comma = comma;
            this.backtrack = backtrack;
        }

        void add(int token, float weight) {
            if (token == comma) {
                lastComma = size;
            } else if (backtrack != 0 && size == CHUNK_TOKENS && lastComma != -1 && size - lastComma <= backtrack) {
                // move the tokens after the last comma into the next chunk
                int breakAt = lastComma + 1;
                int[] relocTokens = Arrays.copyOfRange(tokens, breakAt, size);
                float[] relocMults = Arrays.copyOfRange(mults, breakAt, size);
                size = breakAt;
                nextChunk(false);
                System.arraycopy(relocTokens, 0, tokens, 0, relocTokens.length);
                System.arraycopy(relocMults, 0, mults, 0, relocMults.length);
                size = relocTokens.length;
            }
            if (size == CHUNK_TOKENS) {
                nextChunk(false);
            }
            tokens[size] = token;
            mults[size] = weight;
            size++;
        }

        /** A1111 {@code next_chunk}: pad with EOS to 75, wrap in BOS/EOS, start an empty chunk. */
        void nextChunk(boolean isLast) {
            tokenCount += isLast ? size : CHUNK_TOKENS;
            int[] t = new int[ClipTokenizer.CONTEXT_LENGTH];
            float[] m = new float[ClipTokenizer.CONTEXT_LENGTH];
            Arrays.fill(t, ClipTokenizer.EOS);
            Arrays.fill(m, 1f);
            t[0] = ClipTokenizer.BOS;
            System.arraycopy(tokens, 0, t, 1, size);
            System.arraycopy(mults, 0, m, 1, size);
            chunks.add(new Chunk(t, m));
            size = 0;
            lastComma = -1;
        }

        void finish() {
            if (size > 0 || chunks.isEmpty()) {
                nextChunk(true);
            }
        }
    }
}
