/**
 * The diffusion side of a training step that needs no network: the DDPM scaled-linear schedule,
 * {@code add_noise}, uniform timesteps, multires (pyramid) noise and noise offset, on float[] in NCHW.
 * Imports {@code tenmin.train} (the Rng) and {@code tenmin.core} only.
 */
package tenmin.train.noise;
