/**
 * The pure-Java backend: the reference every other backend is tested against, and what every test on
 * a machine without a GPU runs. fp32 arithmetic on {@code float[]} storage (bf16/fp16 tensors hold
 * values rounded to their precision), a fixed thread pool sized to the cores, Vector API
 * ({@code jdk.incubator.vector}) kernels for matrix products and convolutions (im2col + GEMM), and
 * block-wise attention whose memory stays bounded.
 *
 * <p>Kernels are deterministic: work is split into fixed ranges that do not depend on scheduling.
 *
 * <p>Imports {@code tenmin.engine.api}, {@code tenmin.formats} (fp16/bf16 rounding) and
 * {@code tenmin.core}; never autograd, models or anything above.
 */
package tenmin.engine.backend.cpu;
