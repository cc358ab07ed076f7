/**
 * Everything around the training loop that needs no neural network: the typed config
 * ({@link tenmin.train.TrainConfig}), the seeded, resumable random generator ({@link tenmin.train.Rng}),
 * and the sub-packages data (dataset, buckets, batching), noise, optim, schedule, save (metadata, names,
 * hashes, training state) and log (TensorBoard tags and directory). The loop itself lives here too once
 * the engine and the models exist.
 * Imports {@code tenmin.formats} and {@code tenmin.core}; never picocli.
 */
package tenmin.train;
