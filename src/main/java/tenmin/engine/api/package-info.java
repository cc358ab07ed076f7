/**
 * The engine's public types: {@link tenmin.engine.api.Tensor}, {@link tenmin.engine.api.Shape},
 * {@link tenmin.engine.api.DType}, {@link tenmin.engine.api.Device}, the lifetime and factory
 * {@link tenmin.engine.api.Scope}, the seeded {@link tenmin.engine.api.Generator}, the op tracer
 * {@link tenmin.engine.api.Trace}, the op counter {@link tenmin.engine.api.OpStats}, the byte accounting
 * {@link tenmin.engine.api.MemoryMeter} and {@link tenmin.engine.api.Backend}, the op contract every backend
 * (pure-Java {@code cpu}, libtorch {@code torch}, shape-only {@code meta}) implements.
 *
 * <p>Conventions of the whole engine: every tensor is dense and row-major (contiguous); ops never
 * change dtypes implicitly (casts are ops); every op's results belong to the {@link tenmin.engine.api.Scope}
 * passed first; nothing leaves the tensor's device except through the named host copies.
 * See docs/ENGINE.md and docs/MEMORY.md.
 *
 * <p>Imports only {@code tenmin.core} and {@code tenmin.formats}; never autograd, a backend, models,
 * lora, train, tools, sample or cli.
 */
package tenmin.engine.api;
