package tenmin.train.data;

import java.util.ArrayList;
import java.util.List;

import tenmin.train.Rng;

/**
 * Per-draw caption processing (trainer-spec §3.2; kohya {@code process_caption}), with the options of
 * {@link CaptionOptions}: optional prefix and suffix (joined with a space); then the caption dropout (a draw below the
 * rate, or an epoch that is a multiple of every-N: the caption is empty); then, when shuffling, dropping tags or in
 * a token warm-up, the caption is split into tags — on the keep-tokens separator when it occurs (front tags, the
 * movable tags, and after a second one end tags; empty tags dropped), otherwise on the separator with every piece
 * stripped (empty pieces kept) and the first {@code keepTokens} in front — during a token warm-up only the first
 * movable tags are kept ({@link CaptionOptions#warmupTagCount}), the movable tags are shuffled, each is then
 * dropped with the tag-dropout rate, and all are re-joined with {@code ", "}; finally the secondary separator is
 * replaced by the separator. Random draws, in that order, only for the features in use.
 */
public final class Captions {
    private Captions() {
    }

    /** {@link #process(String, CaptionOptions, int, Rng)} with prefix, suffix and shuffling only. */
    public static String process(String caption, String prefix, String suffix, boolean shuffle, int keepTokens,
                                 String separator, Rng rng) {
        return process(caption, CaptionOptions.of(prefix, suffix, shuffle, keepTokens, separator), 1, rng);
    }

    /**
     * The caption of one draw in the (1-based, as the reference counts them) {@code epoch}, for options without a
     * token warm-up.
     *
     * @throws IllegalArgumentException for options with a token warm-up (it needs the step)
     */
    public static String process(String caption, CaptionOptions o, int epoch, Rng rng) {
        if (o.tokenWarmupStep() > 0) {
            throw new IllegalArgumentException("a token warm-up needs the step of the draw");
        }
        return process(caption, o, epoch, 0, 0, rng);
    }

    /**
     * The caption of one draw in the (1-based, as the reference counts them) {@code epoch}, after {@code step}
     * optimizer steps of a run of {@code maxTrainSteps} (what a token warm-up depends on).
     */
    public static String process(String caption, CaptionOptions o, int epoch, long step, long maxTrainSteps,
                                 Rng rng) {
        String c = caption;
        if (o.prefix() != null && !o.prefix().isEmpty()) {
            c = o.prefix() + " " + c;
        }
        if (o.suffix() != null && !o.suffix().isEmpty()) {
            c = c + " " + o.suffix();
        }
        boolean drop = o.dropoutRate() > 0 && rng.nextDouble() < o.dropoutRate();
        if (drop || o.dropoutEveryNEpochs() > 0 && epoch % o.dropoutEveryNEpochs() == 0) {
            return "";
        }
        if (o.wildcard()) {
            c = wildcards(c, rng);
        } else {
            int nl = c.indexOf('\n');
            c = nl < 0 ? c : c.substring(0, nl);
        }
        double warmupSteps = o.warmupSteps(maxTrainSteps);
        if (o.splitsTags(warmupSteps)) {
            List<String> fixed;
            List<String> flex;
            List<String> fixedSuffix = List.of();
            String ks = o.keepTokensSeparator();
            int at = ks.isEmpty() ? -1 : c.indexOf(ks);
            if (at >= 0) {
                fixed = nonEmptyTags(c.substring(0, at), o.separator());
                String rest = c.substring(at + ks.length());
                int second = rest.indexOf(ks);
                if (second >= 0) {
                    fixedSuffix = nonEmptyTags(rest.substring(second + ks.length()), o.separator());
                    rest = rest.substring(0, second);
                }
                flex = nonEmptyTags(rest, o.separator());
            } else {
                List<String> tokens = split(c.strip(), o.separator());
                int keep = Math.min(o.keepTokens(), tokens.size());
                fixed = new ArrayList<>(tokens.subList(0, keep));
                flex = new ArrayList<>(tokens.subList(keep, tokens.size()));
            }
            flex = new ArrayList<>(flex.subList(0, o.warmupTagCount(flex.size(), step, warmupSteps)));
            if (o.shuffle()) {
                rng.shuffle(flex);
            }
            List<String> all = new ArrayList<>(fixed);
            for (String tag : flex) {                       // one draw per tag, in order, when dropping tags
                if (o.tagDropoutRate() == 0 || rng.nextDouble() >= o.tagDropoutRate()) {
                    all.add(tag);
                }
            }
            all.addAll(fixedSuffix);
            c = String.join(", ", all);
        }
        if (o.secondarySeparator() != null) {
            c = c.replace(o.secondarySeparator(), o.separator());
        }
        return c;
    }

    private static final java.util.regex.Pattern WILDCARD = java.util.regex.Pattern.compile("\\{([^}]+)\\}");

    /**
     * kohya's wildcards: one line of a multi-line caption (a uniform draw), then each {@code {a|b|…}} replaced by one
     * of its choices (a draw each, left to right); {@code {{} and {@code }}} are literal braces.
     */
    static String wildcards(String caption, Rng rng) {
        String c = caption;
        if (c.contains("\n")) {
            String[] lines = c.split("\n", -1);
            c = lines[rng.nextInt(lines.length)];
        }
        String open = "\u2985";
        String close = "\u2986";
        while (c.contains(open) || c.contains(close)) {
            open += "\u2985";
            close += "\u2986";
        }
        c = c.replace("{{", open).replace("}}", close);
        java.util.regex.Matcher m = WILDCARD.matcher(c);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String[] choices = m.group(1).split("\\|", -1);
            m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(choices[rng.nextInt(choices.length)]));
        }
        m.appendTail(out);
        return out.toString().replace(open, "{").replace(close, "}");
    }

    /** {@code s} split on {@code separator} (Python's str.split), every piece stripped, empty pieces kept. */
    private static List<String> split(String s, String separator) {
        List<String> tokens = new ArrayList<>();
        int from = 0;
        while (true) {
            int at = s.indexOf(separator, from);
            if (at < 0) {
                tokens.add(s.substring(from).strip());
                return tokens;
            }
            tokens.add(s.substring(from, at).strip());
            from = at + separator.length();
        }
    }

    private static List<String> nonEmptyTags(String s, String separator) {
        List<String> tags = split(s, separator);
        tags.removeIf(String::isEmpty);
        return tags;
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
