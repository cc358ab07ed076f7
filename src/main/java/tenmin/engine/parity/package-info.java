/**
 * Backend parity: runs every op of the {@link tenmin.engine.api.Backend} contract, forward and backward, on
 * a reference backend (the pure-Java {@code cpu} backend) and a candidate (the {@code torch} backend on CPU
 * or CUDA) with the same random inputs built in memory, and reports the error of each. Used by the torch
 * tests and by {@code scripts/gpu-check.sh} on a GPU machine ({@link tenmin.engine.parity.GpuCheck}).
 *
 * <p>Imports {@code tenmin.engine.api}, {@code tenmin.engine.backend.torch} and {@code tenmin.core}; the
 * {@code cpu} backend is created by class name, so this package compiles without it.
 */
package tenmin.engine.parity;
