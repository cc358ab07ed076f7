/**
 * The SDXL model bundle used by training and sampling: {@link tenmin.models.SdxlModels} holds the U-Net,
 * both text encoders and the VAE of one single-file checkpoint (or of seeded random weights for a
 * configuration built in memory), sized by {@link tenmin.models.SdxlConfig}, with a dtype per component
 * ({@link tenmin.models.SdxlDtypes}), and turns captions into the U-Net's conditioning
 * ({@link tenmin.models.SdxlModels#condition}). Imports {@code tenmin.models.sdxl}, {@code models.clip},
 * {@code models.vae}, {@code models.nn}, {@code engine}, {@code formats} and {@code core}; never
 * {@code lora}, {@code train}, {@code sample}, {@code tools} or {@code cli}.
 */
package tenmin.models;
