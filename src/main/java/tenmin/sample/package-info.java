/**
 * Image generation: prompt weighting and chunking ({@link tenmin.sample.PromptAttention},
 * {@link tenmin.sample.PromptChunks}, {@link tenmin.sample.PromptEncoder}), noise schedules and samplers on host
 * float arrays ({@link tenmin.sample.Sampler}), PyTorch-compatible seeded noise, the text-to-image pipeline
 * ({@link tenmin.sample.SdxlPipeline}: text conditioning, classifier-free guidance, VAE decoding, A1111
 * metadata), LoRAs applied in memory with strengths and block vectors ({@link tenmin.sample.LoraSet}), the
 * block atlas ({@link tenmin.sample.BlockAtlas}), image files and grids, the sample-prompt file parser and the
 * sampling benchmark. Runs on any backend through {@code Functional}/{@code Backend} only. May import
 * {@code lora}, {@code models}, {@code engine}, {@code formats} and {@code core}; never {@code cli},
 * {@code train} or {@code tools} (the atlas computes inspect's block energies with {@code lora.DeltaMath}).
 */
package tenmin.sample;
