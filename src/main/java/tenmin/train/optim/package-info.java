/**
 * Host-side optimizers over fp32 parameter buffers ({@link tenmin.train.optim.Param}: value, gradient,
 * "has a gradient"): ClybW/Compass bit-exact with the reference, AdamW, Lion, SGD with momentum; global
 * gradient-norm clipping; state export/import for resume.
 * Imports only {@code tenmin.core} of tenmin; knows nothing about the engine or the models.
 */
package tenmin.train.optim;
