/**
 * Image generation without the networks: prompt weighting and chunking ({@link tenmin.sample.PromptAttention},
 * {@link tenmin.sample.PromptChunks}), noise schedules and samplers on host float arrays
 * ({@link tenmin.sample.Sampler}), seeded noise, and the labelled image grid; later the pipeline that
 * drives the SDXL models and the sample-prompt file parser. May import {@code lora}, {@code models},
 * {@code engine}, {@code formats} and {@code core}; never {@code cli}, {@code train} or {@code tools}.
 */
package tenmin.sample;
