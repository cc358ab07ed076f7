/**
 * The SDXL VAE (sgm {@code AutoencoderKL}: {@code Encoder}, {@code Decoder}, diagonal Gaussian posterior)
 * for latent caching and sample decoding, inference only: {@link tenmin.models.vae.Vae} (with the latent
 * scale factor), its sizes ({@link tenmin.models.vae.VaeConfig}) and checkpoint key names
 * ({@link tenmin.models.vae.VaeKeys}). Imports {@code tenmin.models.nn}, {@code tenmin.engine},
 * {@code tenmin.formats} and {@code tenmin.core} only; never {@code lora}, {@code train}, {@code sample},
 * {@code tools} or {@code cli}.
 */
package tenmin.models.vae;
