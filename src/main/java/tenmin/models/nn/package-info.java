/**
 * Building blocks shared by the model families: where weights come from ({@link tenmin.models.nn.Params}:
 * checkpoint, meta, random) and the layers that carry them ({@link tenmin.models.nn.Linear},
 * {@link tenmin.models.nn.Conv2d} with an {@link tenmin.models.nn.Adapter} slot for LoRA, norms), and the
 * reference class of each module ({@link tenmin.models.nn.Params#declare}) that LoRA presets select by.
 * Imports engine, formats and core only; knows nothing of SDXL or LoRA file formats.
 */
package tenmin.models.nn;
