/**
 * What a save writes: output file names, kohya's ss_* / modelspec metadata (Python str() renderings),
 * the model hashes (streamed), the LoRA file writer (atomic, sshs_model_hash), and the training-state
 * file for resume. Imports {@code tenmin.train}, {@code tenmin.train.optim}, {@code tenmin.train.data},
 * {@code tenmin.formats}, {@code tenmin.core}.
 */
package tenmin.train.save;
