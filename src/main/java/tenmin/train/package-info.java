/**
 * The training recipe: the loop ({@link tenmin.train.Trainer}, trainer-spec §2) and what it drives — setup
 * ({@link tenmin.train.TrainSetup}), the dataset in buckets ({@link tenmin.train.TrainingData}), the latent
 * cache ({@link tenmin.train.LatentCache}), a micro-batch's host inputs ({@link tenmin.train.BatchInputs}), the
 * LoCon network and its host-side optimizer groups ({@link tenmin.train.TrainableNetwork}), sample images
 * ({@link tenmin.train.TrainingSamples}), saves ({@link tenmin.train.Checkpoints}), resume
 * ({@link tenmin.train.Resume}), the memory plan ({@link tenmin.train.MemoryPlan}), the micro-batch benchmark and
 * its shape-only plan ({@link tenmin.train.TrainBenchmark}, {@code tenmin bench train}), the step parity of the
 * one-call GPU check ({@link tenmin.train.GpuStepParity}) and the built-in demo's data
 * ({@link tenmin.train.DemoData}) — plus the typed config ({@link tenmin.train.TrainConfig}) and the seeded,
 * resumable generator ({@link tenmin.train.Rng}). The sub-packages data, noise, optim, schedule, save and log
 * need no network. Imports {@code sample}, {@code lora}, {@code models}, {@code engine}, {@code formats} and
 * {@code core}; never {@code cli}, {@code tools} or picocli.
 */
package tenmin.train;
