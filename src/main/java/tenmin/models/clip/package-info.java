/**
 * The CLIP text side of SDXL: the BPE tokenizer ({@link tenmin.models.clip.ClipTokenizer}, with its
 * bundled openai vocabulary), the text transformer ({@link tenmin.models.clip.ClipTextEncoder}: HF layout
 * for text encoder 1, OpenCLIP layout for text encoder 2), both encoders together
 * ({@link tenmin.models.clip.SdxlTextEncoders}: context and pooled vector), their sizes
 * ({@link tenmin.models.clip.ClipTextConfig}) and checkpoint key names ({@link tenmin.models.clip.ClipKeys}).
 * Imports {@code tenmin.models.nn}, {@code tenmin.engine}, {@code tenmin.formats} and {@code tenmin.core} only;
 * never {@code lora}, {@code train}, {@code sample}, {@code tools} or {@code cli}.
 */
package tenmin.models.clip;
