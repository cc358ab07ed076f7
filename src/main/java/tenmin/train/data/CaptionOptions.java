package tenmin.train.data;

/**
 * How a caption is processed at every draw ({@link Captions#process}; kohya's {@code process_caption}).
 *
 * @param prefix              text put before the caption with a space (null: none)
 * @param suffix              text put after the caption with a space (null: none)
 * @param shuffle             shuffle the tags ({@code --shuffle_caption})
 * @param keepTokens          leading tags kept in place ({@code --keep_tokens})
 * @param separator           the tag separator ({@code --caption_separator}, {@code ","})
 * @param keepTokensSeparator {@code --keep_tokens_separator} (e.g. {@code |||}; empty: none): the tags before it stay
 *                            in front and those after a second one stay at the end, in place of
 *                            {@code keepTokens}
 * @param secondarySeparator  {@code --secondary_separator} (e.g. {@code ;;;}; null: none): joins tags that move
 *                            together; replaced by the separator after shuffling
 * @param dropoutRate         {@code --caption_dropout_rate}: the chance that a draw's caption is empty
 * @param dropoutEveryNEpochs {@code --caption_dropout_every_n_epochs}: every caption of every Nth epoch is empty
 *                            (0: off)
 * @param tagDropoutRate      {@code --caption_tag_dropout_rate}: the chance that each movable tag is left out
 * @param wildcard            {@code --enable_wildcard}: caption files are read whole; each draw takes one of their
 *                            lines and replaces every {@code {a|b|c}} by one of its choices ({@code {{}} and
 *                            {@code }}} stand for literal braces)
 */
public record CaptionOptions(String prefix, String suffix, boolean shuffle, int keepTokens, String separator,
                             String keepTokensSeparator, String secondarySeparator, double dropoutRate,
                             int dropoutEveryNEpochs, double tagDropoutRate, boolean wildcard) {

    /** Options without wildcards. */
    public CaptionOptions(String prefix, String suffix, boolean shuffle, int keepTokens, String separator,
                          String keepTokensSeparator, String secondarySeparator, double dropoutRate,
                          int dropoutEveryNEpochs, double tagDropoutRate) {
        this(prefix, suffix, shuffle, keepTokens, separator, keepTokensSeparator, secondarySeparator, dropoutRate,
                dropoutEveryNEpochs, tagDropoutRate, false);
    }

    public CaptionOptions {
        if (separator == null || separator.isEmpty()) {
            throw new IllegalArgumentException("the caption separator must not be empty");
        }
        if (keepTokens < 0 || dropoutEveryNEpochs < 0 || !(dropoutRate >= 0 && dropoutRate <= 1)
                || !(tagDropoutRate >= 0 && tagDropoutRate <= 1)) {
            throw new IllegalArgumentException("caption options out of range: keep " + keepTokens + ", dropout "
                    + dropoutRate + " / every " + dropoutEveryNEpochs + " epochs, tag dropout " + tagDropoutRate);
        }
        keepTokensSeparator = keepTokensSeparator == null ? "" : keepTokensSeparator;
        secondarySeparator = secondarySeparator == null || secondarySeparator.isEmpty() ? null : secondarySeparator;
    }

    /** Captions as written, with no processing. */
    public static final CaptionOptions NONE = of(null, null, false, 0, ",");

    /** Prefix, suffix and shuffling only: no dropout, no keep-tokens separator, no secondary separator. */
    public static CaptionOptions of(String prefix, String suffix, boolean shuffle, int keepTokens, String separator) {
        return new CaptionOptions(prefix, suffix, shuffle, keepTokens, separator, "", null, 0, 0, 0);
    }

    /**
     * Whether a caption comes out the same at every draw: no shuffling, no dropout (kohya's
     * {@code is_text_encoder_output_cacheable}, and no wildcards).
     */
    public boolean sameEveryDraw() {
        return !shuffle && dropoutRate == 0 && dropoutEveryNEpochs == 0 && tagDropoutRate == 0 && !wildcard;
    }

    /** Whether tags are split and re-joined (kohya's condition: shuffling or tag dropout). */
    boolean splitsTags() {
        return shuffle || tagDropoutRate > 0;
    }
}
