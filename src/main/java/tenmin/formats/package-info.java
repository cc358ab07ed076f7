/**
 * File formats: safetensors (memory-mapped reader, byte-compatible atomic writer), fp16/bf16
 * conversions, atomic file writes, PNG with text chunks and A1111's {@code parameters} text, a TOML reader
 * ({@link tenmin.formats.Toml}), TensorBoard event files ({@link tenmin.formats.TensorBoardWriter}), NumPy {@code .npz} archives
 * ({@link tenmin.formats.NpzFile}: kohya's latent cache).
 * May use {@code MemorySegment} for memory-mapped files; makes no native downcalls.
 * Imports only {@code tenmin.core} of tenmin.
 */
package tenmin.formats;
