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
 * @param tokenWarmupMin      {@code --token_warmup_min}: the movable tags a caption keeps at step 0 of the warm-up
 * @param tokenWarmupStep     {@code --token_warmup_step}: the step at which the warm-up ends, or below 1 a fraction
 *                            of the run's optimizer steps (0: no warm-up); see {@link #warmupSteps}
 */
public record CaptionOptions(String prefix, String suffix, boolean shuffle, int keepTokens, String separator,
                             String keepTokensSeparator, String secondarySeparator, double dropoutRate,
                             int dropoutEveryNEpochs, double tagDropoutRate, boolean wildcard, int tokenWarmupMin,
                             double tokenWarmupStep) {

    /** Options without token warm-up. */
    public CaptionOptions(String prefix, String suffix, boolean shuffle, int keepTokens, String separator,
                          String keepTokensSeparator, String secondarySeparator, double dropoutRate,
                          int dropoutEveryNEpochs, double tagDropoutRate, boolean wildcard) {
        this(prefix, suffix, shuffle, keepTokens, separator, keepTokensSeparator, secondarySeparator, dropoutRate,
                dropoutEveryNEpochs, tagDropoutRate, wildcard, 1, 0);
    }

    /** Options without wildcards or token warm-up. */
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
        if (tokenWarmupMin < 0 || !(tokenWarmupStep >= 0) || Double.isInfinite(tokenWarmupStep)) {
            throw new IllegalArgumentException("token warm-up out of range: min " + tokenWarmupMin + ", step "
                    + tokenWarmupStep);
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
     * Whether a caption comes out the same at every draw: no shuffling, no dropout, no token warm-up (kohya's
     * {@code is_text_encoder_output_cacheable}, and no wildcards).
     */
    public boolean sameEveryDraw() {
        return !shuffle && dropoutRate == 0 && dropoutEveryNEpochs == 0 && tagDropoutRate == 0 && !wildcard
                && tokenWarmupStep == 0;
    }

    /**
     * The step T at which the token warm-up ends in a run of {@code maxTrainSteps} optimizer steps: the
     * {@code tokenWarmupStep} given, or below 1 ⌊tokenWarmupStep · maxTrainSteps⌋ (kohya's {@code process_caption}
     * sets it so at its first call). 0: no warm-up. Not rounded otherwise (kohya keeps a float such as 2.5).
     */
    public double warmupSteps(long maxTrainSteps) {
        return tokenWarmupStep < 1 ? Math.floor(tokenWarmupStep * maxTrainSteps) : tokenWarmupStep;
    }

    /**
     * How many of {@code movable} tags (those after the kept ones) a caption keeps during the token warm-up, after
     * {@code step} optimizer steps with the warm-up ending at {@code warmupSteps} (T, {@link #warmupSteps}):
     * while {@code step < T}, ⌊step · ((movable − min) / T)⌋ + min, at most {@code movable}; otherwise all of them
     * (kohya's {@code process_caption}, which keeps that many from the front, before shuffling).
     */
    public int warmupTagCount(int movable, long step, double warmupSteps) {
        if (warmupSteps == 0 || step >= warmupSteps) {
            return movable;
        }
        double n = Math.floor(step * ((double) (movable - tokenWarmupMin) / warmupSteps)) + tokenWarmupMin;
        return (int) Math.min(movable, n);
    }

    /**
     * Whether tags are split and re-joined (kohya's condition: shuffling, tag dropout, or a token warm-up that ends
     * at {@code warmupSteps > 0}).
     */
    boolean splitsTags(double warmupSteps) {
        return shuffle || tagDropoutRate > 0 || warmupSteps > 0;
    }
}
