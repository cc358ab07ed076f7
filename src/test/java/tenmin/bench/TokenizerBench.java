package tenmin.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import tenmin.models.clip.ClipTokenizer;
import tenmin.sample.PromptChunks;

/**
 * Throughput of the CLIP tokenizer and the prompt chunker on caption-like text (not a test; run by hand):
 * <pre>
 * scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false   # compiles the test classes
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" -cp target/classes:target/test-classes tenmin.bench.TokenizerBench
 * </pre>
 */
public final class TokenizerBench {
    private TokenizerBench() {
    }

    public static void main(String[] args) {
        long t0 = System.nanoTime();
        ClipTokenizer tok = ClipTokenizer.shared();
        tok.encode("warm up the vocabulary");
        double loadMs = (System.nanoTime() - t0) / 1e6;
        List<String> captions = captions(2000, 7);
        int totalTokens = 0;
        for (String c : captions) {
            totalTokens += tok.encode(c).length;
        }
        System.out.printf("vocabulary load: %.0f ms; %d captions, %.1f BPE tokens each%n", loadMs, captions.size(),
                totalTokens / (double) captions.size());
        for (int round = 0; round < 5; round++) {
            long start = System.nanoTime();
            int reps = 5;
            for (int r = 0; r < reps; r++) {
                for (String c : captions) {
                    tok.tokenize(c, ClipTokenizer.PAD_TE1);
                }
            }
            double s = (System.nanoTime() - start) / 1e9;
            long chunkStart = System.nanoTime();
            for (String c : captions) {
                PromptChunks.of(c, tok);
            }
            double cs = (System.nanoTime() - chunkStart) / 1e9;
            System.out.printf("round %d: tokenize %.0f captions/s; weighted chunking %.0f prompts/s%n", round,
                    reps * captions.size() / s, captions.size() / cs);
        }
    }

    /** Tag-list captions of 15-40 tags from a fixed vocabulary, some weighted, like booru-style training captions. */
    static List<String> captions(int n, long seed) {
        String[] tags = {"1girl", "solo", "long hair", "looking at viewer", "smile", "open mouth", "blue eyes",
            "blonde hair", "shirt", "hat", "dress", "holding", "jewelry", "standing", "full body", "flower", "outdoors",
            "sky", "day", "cloud", "tree", "blue sky", "petals", "cherry blossoms", "wind", "spring (season)", "scenery",
            "building", "city", "street", "road", "crowd", "night", "lights", "reflection", "rain", "umbrella",
            "puddle", "stars", "moon", "masterpiece", "best quality", "highres", "absurdres", "score_9",
            "score_8_up", "source_anime", "depth of field", "bokeh", "café terrace", "watercolor \\(medium\\)"};
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int k = 15 + r.nextInt(26);
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j < k; j++) {
                if (j > 0) {
                    sb.append(", ");
                }
                String t = tags[r.nextInt(tags.length)];
                sb.append(r.nextInt(8) == 0 ? "(" + t + ":1.2)" : t);
            }
            out.add(sb.toString());
        }
        return out;
    }
}
