package tenmin.train.data;

import java.util.ArrayList;
import java.util.List;

import tenmin.train.Rng;

/**
 * Per-draw caption processing (trainer-spec §3.2; kohya {@code process_caption}): optional prefix and suffix
 * (joined with a space), then with {@code shuffle} the caption is split on the separator, every piece
 * stripped (empty pieces kept), the first {@code keepTokens} pieces stay in front and the rest is shuffled;
 * the pieces are re-joined with {@code ", "}.
 */
public final class Captions {
    private Captions() {
    }

    public static String process(String caption, String prefix, String suffix, boolean shuffle, int keepTokens,
                                 String separator, Rng rng) {
        String c = caption;
        if (prefix != null && !prefix.isEmpty()) {
            c = prefix + " " + c;
        }
        if (suffix != null && !suffix.isEmpty()) {
            c = c + " " + suffix;
        }
        if (!shuffle) {
            return c;
        }
        List<String> tokens = new ArrayList<>();
        String s = c.strip();
        int from = 0;
        while (true) {
            int at = s.indexOf(separator, from);
            if (at < 0) {
                tokens.add(s.substring(from).strip());
                break;
            }
            tokens.add(s.substring(from, at).strip());
            from = at + separator.length();
        }
        int keep = Math.min(keepTokens, tokens.size());
        List<String> fixed = new ArrayList<>(tokens.subList(0, keep));
        List<String> flex = new ArrayList<>(tokens.subList(keep, tokens.size()));
        rng.shuffle(flex);
        fixed.addAll(flex);
        return String.join(", ", fixed);
    }

    /**
     * Tag frequencies as kohya's {@code ss_tag_frequency} counts them for one folder: raw captions split on
     * {@code ","}, stripped, lower-cased, empty tags ignored; each image counted once (not per repeat).
     */
    public static java.util.Map<String, Integer> tagFrequency(List<String> captions) {
        java.util.Map<String, Integer> freq = new java.util.LinkedHashMap<>();
        for (String cap : captions) {
            for (String tag : cap.split(",", -1)) {
                String t = tag.strip().toLowerCase(java.util.Locale.ROOT);
                if (!t.isEmpty()) {
                    freq.merge(t, 1, Integer::sum);
                }
            }
        }
        return freq;
    }
}
