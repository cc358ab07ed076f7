/**
 * The CLIP text side of SDXL: the BPE tokenizer ({@link tenmin.models.clip.ClipTokenizer}, with its
 * bundled openai vocabulary) and the two text encoders. Imports {@code tenmin.engine}, {@code tenmin.formats}
 * and {@code tenmin.core} only; never {@code lora}, {@code train}, {@code sample}, {@code tools} or {@code cli}.
 */
package tenmin.models.clip;
