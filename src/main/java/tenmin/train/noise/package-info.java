/**
 * The diffusion side of a training step that needs no network: the DDPM scaled-linear schedule,
 * {@code add_noise}, uniform timesteps, multires (pyramid) noise and noise offset, on float[] in NCHW.
 * Imports {@code tenmin.train} (the Rng), {@code tenmin.core} and {@code tenmin.sample.NoiseSchedule} (the
 * scaled-linear betas and ᾱ, one computation for training and sampling) only.
 */
package tenmin.train.noise;
