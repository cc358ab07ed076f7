/**
 * File formats: safetensors (memory-mapped reader, byte-compatible atomic writer), fp16/bf16
 * conversions, atomic file writes, a TOML reader ({@link tenmin.formats.Toml}), TensorBoard event files
 * ({@link tenmin.formats.TensorBoardWriter}); later PNG text chunks.
 * May use {@code MemorySegment} for memory-mapped files; makes no native downcalls.
 * Imports only {@code tenmin.core} of tenmin.
 */
package tenmin.formats;
