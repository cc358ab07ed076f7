package tenmin.models.clip;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

import tenmin.core.InputException;

/**
 * The CLIP byte-level BPE tokenizer of both SDXL text encoders, with openai/CLIP {@code SimpleTokenizer}
 * semantics (the reference of {@code tokenizer-cases.json}): text clean-up ({@link TextCleaner}: ftfy,
 * HTML unescaping, whitespace collapse, lower-case), the CLIP word regex, BPE by merge rank, and the
 * 77-token layout {@code [BOS, ≤75 ids, EOS, pad…]} that sd-scripts builds
 * ({@code padding="max_length", truncation=True}); encoder 1 pads with {@link #EOS}, encoder 2 with 0
 * (fixtures README Q3, trainer-spec §4.1).
 *
 * <p>Unlike transformers' tokenizer for {@code tokenizer_2}, {@code !} is an ordinary character here
 * (quirk Q2): prompts with {@code !} get open_clip's ids, which is what SAI's reference pipeline feeds.
 *
 * <p>An instance is immutable and thread-safe. {@link #shared()} loads the bundled vocabulary once per
 * process; {@link #load(Path)} reads another copy of {@code bpe_simple_vocab_16e6.txt.gz}.
 */
public final class ClipTokenizer {
    /** {@code <|startoftext|>}. */
    public static final int BOS = 49406;
    /** {@code <|endoftext|>}; also encoder 1's padding id. */
    public static final int EOS = 49407;
    /** Encoder 1 (CLIP ViT-L) pads with EOS. */
    public static final int PAD_TE1 = EOS;
    /** Encoder 2 (OpenCLIP bigG) pads with 0 ({@code "!"}), as sd-scripts forces and open_clip does. */
    public static final int PAD_TE2 = 0;
    /** Sequence length of both encoders. */
    public static final int CONTEXT_LENGTH = 77;
    /** BPE tokens that fit between BOS and EOS. */
    public static final int MAX_BPE_TOKENS = CONTEXT_LENGTH - 2;
    /** Size of the vocabulary: 256 bytes, 256 bytes + {@code </w>}, 48,894 merges, 2 specials. */
    public static final int VOCAB_SIZE = 49408;

    /** Lines 2..48,895 of the data file are the merges used (openai {@code merges[1:49152-256-2+1]}). */
    private static final int MERGES_USED = 49152 - 256 - 2;
    private static final String RESOURCE = "bpe_simple_vocab_16e6.txt.gz";

    /**
     * openai's pattern {@code <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
     * [^\s\p{L}\p{N}]+} (case-insensitive). After the clean-up the only whitespace left is U+0020.
     */
    private static final Pattern WORD = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\s\\p{L}\\p{N}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);

    private final TextCleaner cleaner;
    /** Token strings in id order (byte-level unicode alphabet, {@code </w>} suffix). */
    private final String[] vocab;
    private final Map<String, Integer> encoder;
    /** Id of the symbol for byte b, and of its word-final ({@code </w>}) variant. */
    private final int[] byteId = new int[256];
    private final int[] byteEndId = new int[256];
    /** The byte each of the 256 alphabet characters stands for (decoding). */
    private final Map<Character, Integer> byteOfChar = new HashMap<>();
    /** (left id, right id) → rank; merged ids in {@link #mergedId}. */
    private final PairTable ranks;
    private final int[] mergedId;

    private ClipTokenizer(List<String> lines, TextCleaner cleaner) {
        this.cleaner = cleaner;
        char[] alphabet = byteAlphabet();
        List<String> v = new ArrayList<>(VOCAB_SIZE);
        for (int b = 0; b < 256; b++) {
            v.add(String.valueOf(alphabet[b]));
        }
        for (int b = 0; b < 256; b++) {
            v.add(alphabet[b] + "</w>");
        }
        if (lines.size() < MERGES_USED + 1) {
            throw new InputException("CLIP vocabulary: expected at least " + (MERGES_USED + 1) + " lines, found "
                    + lines.size());
        }
        String[][] merges = new String[MERGES_USED][];
        for (int r = 0; r < MERGES_USED; r++) {
            String line = lines.get(r + 1);
            int sp = line.indexOf(' ');
            if (sp <= 0 || line.indexOf(' ', sp + 1) >= 0) {
                throw new InputException("CLIP vocabulary: line " + (r + 2) + " is not a merge 'a b': " + line);
            }
            merges[r] = new String[] {line.substring(0, sp), line.substring(sp + 1)};
            v.add(merges[r][0] + merges[r][1]);
        }
        v.add("<|startoftext|>");
        v.add("<|endoftext|>");
        this.vocab = v.toArray(new String[0]);
        // dict(zip(vocab, range(len(vocab)))): a repeated string keeps its last id
        Map<String, Integer> enc = new HashMap<>(vocab.length * 2);
        for (int i = 0; i < vocab.length; i++) {
            enc.put(vocab[i], i);
        }
        this.encoder = Map.copyOf(enc);
        for (int i = 0; i < 256; i++) {
            int b = alphabetByte(alphabet, i);
            byteId[b] = enc.get(String.valueOf(alphabet[i]));
            byteEndId[b] = enc.get(alphabet[i] + "</w>");
            byteOfChar.put(alphabet[i], b);
        }
        this.ranks = new PairTable(MERGES_USED * 2);
        this.mergedId = new int[MERGES_USED];
        for (int r = 0; r < MERGES_USED; r++) {
            Integer a = enc.get(merges[r][0]);
            Integer b = enc.get(merges[r][1]);
            if (a == null || b == null) {
                throw new InputException("CLIP vocabulary: merge on line " + (r + 2) + " uses an unknown symbol");
            }
            ranks.put(a, b, r); // bpe_ranks = dict(zip(merges, range)): a repeated pair keeps its last rank
            mergedId[r] = enc.get(merges[r][0] + merges[r][1]);
        }
    }

    /** The tokenizer over the vocabulary bundled with tenmin, loaded on first use and then shared. */
    public static ClipTokenizer shared() {
        return Holder.INSTANCE;
    }

    private static final class Holder {
        static final ClipTokenizer INSTANCE = loadBundled();
    }

    private static ClipTokenizer loadBundled() {
        try (InputStream in = ClipTokenizer.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource tenmin/models/clip/" + RESOURCE + " missing from the build");
            }
            return new ClipTokenizer(readLines(in), TextCleaner.load());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Loads a tokenizer from a {@code bpe_simple_vocab_16e6.txt.gz} file. */
    public static ClipTokenizer load(Path vocabGz) {
        try (InputStream in = Files.newInputStream(vocabGz)) {
            return new ClipTokenizer(readLines(in), TextCleaner.load());
        } catch (NoSuchFileException e) {
            throw new InputException(vocabGz + ": CLIP vocabulary file not found");
        } catch (IOException e) {
            throw new InputException(vocabGz + ": cannot read the CLIP vocabulary (expected a gzip text file): "
                    + e.getMessage(), e);
        }
    }

    private static List<String> readLines(InputStream in) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(new GZIPInputStream(in, 1 << 16),
                StandardCharsets.UTF_8), 1 << 16);
        List<String> lines = new ArrayList<>(MERGES_USED + 2);
        for (String line = r.readLine(); line != null && lines.size() <= MERGES_USED; line = r.readLine()) {
            lines.add(line);
        }
        return lines;
    }

    // ---- public API -------------------------------------------------------------------------------------

    /** A prompt laid out for one encoder: 77 ids, the BPE token count before truncation, and whether it was cut. */
    public record Tokens(int[] ids, int nBpeTokens, boolean truncated) {
        public Tokens {
            ids = ids.clone();
        }

        @Override
        public int[] ids() {
            return ids.clone();
        }
    }

    /** The clean-up applied before splitting into words (ftfy subset, HTML unescape, whitespace, lower-case). */
    public String clean(String text) {
        return cleaner.clean(text);
    }

    /**
     * All BPE ids of {@code text}, without BOS/EOS and without truncation: the input of the 75-token
     * chunking of long prompts. A literal {@code <|startoftext|>} or {@code <|endoftext|>} in the text
     * becomes the special id, as in openai's tokenizer.
     */
    public int[] encode(String text) {
        String cleaned = cleaner.clean(text);
        IntList out = new IntList(cleaned.length() / 3 + 4);
        Matcher m = WORD.matcher(cleaned);
        int[] work = new int[64];
        while (m.find()) {
            String word = m.group();
            if (word.equals("<|startoftext|>")) {
                out.add(BOS);
                continue;
            }
            if (word.equals("<|endoftext|>")) {
                out.add(EOS);
                continue;
            }
            byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
            if (work.length < bytes.length) {
                work = new int[bytes.length * 2];
            }
            int n = bytes.length;
            for (int i = 0; i < n - 1; i++) {
                work[i] = byteId[bytes[i] & 0xFF];
            }
            work[n - 1] = byteEndId[bytes[n - 1] & 0xFF];
            n = bpe(work, n);
            for (int i = 0; i < n; i++) {
                out.add(work[i]);
            }
        }
        return out.toArray();
    }

    /**
     * The 77-token layout of one encoder: {@code [BOS, first ≤75 BPE ids, EOS, pad…]}; longer prompts are
     * truncated (sd-scripts {@code truncation=True}).
     *
     * @param padId {@link #PAD_TE1} or {@link #PAD_TE2}
     */
    public Tokens tokenize(String text, int padId) {
        return layout(encode(text), padId);
    }

    /** Lays out already encoded BPE ids like {@link #tokenize}. */
    public static Tokens layout(int[] bpe, int padId) {
        return new Tokens(padded(bpe, padId, MAX_BPE_TOKENS), bpe.length, bpe.length > MAX_BPE_TOKENS);
    }

    /** {@code [BOS, first ≤maxTokens BPE ids, EOS, pad…]}, maxTokens + 2 long (truncation=True, max_length padding). */
    private static int[] padded(int[] bpe, int padId, int maxTokens) {
        int[] ids = new int[maxTokens + 2];
        Arrays.fill(ids, padId);
        int n = Math.min(bpe.length, maxTokens);
        ids[0] = BOS;
        System.arraycopy(bpe, 0, ids, 1, n);
        ids[n + 1] = EOS;
        return ids;
    }

    /**
     * The layout of sd-scripts' {@code --max_token_length} 150 or 225 ({@code get_input_ids}; trainer-spec §4.1): the
     * ids of {@code [BOS, ≤maxTokenLength BPE ids, EOS, pad…]} (maxTokenLength + 2 long) cut into 77-id windows
     * {@code [BOS] + ids[i, i+75) + [last id]} for i = 1, 76, 151, …; with a pad other than EOS (text encoder 2),
     * a window whose second-to-last id is neither EOS nor pad ends with EOS, and one whose id after BOS is pad gets
     * EOS there. maxTokenLength 75 gives the one plain row of {@link #layout}.
     */
    public static int[][] windows(int[] bpe, int padId, int maxTokenLength) {
        if (maxTokenLength == MAX_BPE_TOKENS) {
            return new int[][] {layout(bpe, padId).ids()};
        }
        if (maxTokenLength <= MAX_BPE_TOKENS || maxTokenLength % MAX_BPE_TOKENS != 0) {
            throw new IllegalArgumentException("max token length " + maxTokenLength + " is not a multiple of 75 above it");
        }
        int length = maxTokenLength + 2;
        int[] ids = padded(bpe, padId, maxTokenLength);
        int[][] out = new int[maxTokenLength / MAX_BPE_TOKENS][];
        for (int w = 0; w < out.length; w++) {
            int[] chunk = new int[CONTEXT_LENGTH];
            chunk[0] = ids[0];
            System.arraycopy(ids, 1 + w * MAX_BPE_TOKENS, chunk, 1, MAX_BPE_TOKENS);
            chunk[CONTEXT_LENGTH - 1] = ids[length - 1];
            if (padId != EOS) {
                int beforeLast = chunk[CONTEXT_LENGTH - 2];
                if (beforeLast != EOS && beforeLast != padId) {
                    chunk[CONTEXT_LENGTH - 1] = EOS;
                }
                if (chunk[1] == padId) {
                    chunk[1] = EOS;
                }
            }
            out[w] = chunk;
        }
        return out;
    }

    /** Encoder 1 ids (77, padded with EOS). */
    public int[] idsTe1(String text) {
        return tokenize(text, PAD_TE1).ids();
    }

    /** Encoder 2 ids (77, padded with 0). */
    public int[] idsTe2(String text) {
        return tokenize(text, PAD_TE2).ids();
    }

    /** The id of a vocabulary entry such as {@code ",</w>"}, or -1. */
    public int id(String token) {
        Integer id = encoder.get(token);
        return id == null ? -1 : id;
    }

    /** The vocabulary entry of an id (byte-level alphabet, {@code </w>} suffix). */
    public String token(int id) {
        if (id < 0 || id >= vocab.length) {
            throw new IllegalArgumentException("token id " + id + " outside the vocabulary (0.." + (vocab.length - 1) + ")");
        }
        return vocab[id];
    }

    /** Text of BPE ids as openai's {@code decode}: bytes joined, {@code </w>} read as a space. */
    public String decode(int[] ids) {
        StringBuilder sym = new StringBuilder();
        for (int id : ids) {
            sym.append(token(id));
        }
        String s = sym.toString();
        byte[] bytes = new byte[s.length()];
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            if (s.startsWith("</w>", i)) {
                bytes[n++] = ' ';
                i += 3;
                continue;
            }
            Integer b = byteOfChar.get(s.charAt(i));
            if (b == null) { // the specials' own characters are all printable ASCII
                bytes[n++] = (byte) s.charAt(i);
            } else {
                bytes[n++] = (byte) (int) b;
            }
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }

    // ---- BPE ------------------------------------------------------------------------------------------

    /**
     * Merges the symbols {@code word[0..n)} in place: repeatedly the adjacent pair with the lowest merge
     * rank is joined at every non-overlapping occurrence, left to right (openai {@code bpe}); returns the
     * new length.
     */
    private int bpe(int[] word, int n) {
        while (n > 1) {
            int best = Integer.MAX_VALUE;
            int left = -1;
            int right = -1;
            for (int i = 0; i + 1 < n; i++) {
                int r = ranks.get(word[i], word[i + 1]);
                if (r >= 0 && r < best) {
                    best = r;
                    left = word[i];
                    right = word[i + 1];
                }
            }
            if (best == Integer.MAX_VALUE) {
                break;
            }
            int merged = mergedId[best];
            int out = 0;
            for (int i = 0; i < n; ) {
                if (i + 1 < n && word[i] == left && word[i + 1] == right) {
                    word[out++] = merged;
                    i += 2;
                } else {
                    word[out++] = word[i++];
                }
            }
            n = out;
        }
        return n;
    }

    /**
     * openai {@code bytes_to_unicode}: printable Latin-1 bytes stand for themselves, the other 68 bytes
     * map to U+0100 onwards in byte order. Index i of the result is the i-th vocabulary entry.
     */
    private static char[] byteAlphabet() {
        char[] out = new char[256];
        boolean[] printable = new boolean[256];
        int k = 0;
        for (int b = 0; b < 256; b++) {
            printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (printable[b]) {
                out[k++] = (char) b;
            }
        }
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            if (!printable[b]) {
                out[k++] = (char) (256 + extra++);
            }
        }
        return out;
    }

    /** The byte that alphabet entry i stands for. */
    private static int alphabetByte(char[] alphabet, int i) {
        char c = alphabet[i];
        if (c < 256) {
            return c;
        }
        // the non-printable bytes in increasing order received U+0100, U+0101, ...
        int nth = c - 256;
        int seen = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (!printable && seen++ == nth) {
                return b;
            }
        }
        throw new IllegalStateException("byte alphabet");
    }

    /** Open-addressing map from an ordered pair of ids to a rank (no boxing on the hot path). */
    private static final class PairTable {
        private final long[] keys;
        private final int[] values;
        private final int mask;

        PairTable(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
            keys = new long[cap];
            values = new int[cap];
            Arrays.fill(keys, -1L);
            mask = cap - 1;
        }

        private static long key(int a, int b) {
            return ((long) a << 32) | (b & 0xFFFFFFFFL);
        }

        private int slot(long k) {
            long h = k * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 40) & mask;
        }

        void put(int a, int b, int value) {
            long k = key(a, b);
            int i = slot(k);
            while (keys[i] != -1L && keys[i] != k) {
                i = (i + 1) & mask;
            }
            keys[i] = k;
            values[i] = value;
        }

        int get(int a, int b) {
            long k = key(a, b);
            int i = slot(k);
            while (true) {
                long found = keys[i];
                if (found == k) {
                    return values[i];
                }
                if (found == -1L) {
                    return -1;
                }
                i = (i + 1) & mask;
            }
        }
    }

    /** Growable int array. */
    private static final class IntList {
        private int[] data;
        private int size;

        IntList(int capacity) {
            data = new int[Math.max(4, capacity)];
        }

        void add(int v) {
            if (size == data.length) {
                data = Arrays.copyOf(data, size * 2);
            }
            data[size++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }
}
