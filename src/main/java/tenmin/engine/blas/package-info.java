/**
 * OpenBLAS (BLAS level 3 and LAPACK) through the Foreign Function &amp; Memory API, for the tools whose dense
 * linear algebra is large enough that the JIT's warm-up of our own Java kernels costs more than the work
 * itself (resize: Gram matrices, Cholesky factors, symmetric eigenproblems and thin products of a LoRA's
 * factors). Optional: {@link tenmin.engine.blas.OpenBlas#find()} says why none was found, and callers keep a
 * pure-Java path.
 *
 * <ul>
 *   <li>{@link tenmin.engine.blas.NativeLibraries}: where shared libraries are (the dynamic linker's cache,
 *       the folder the build unpacks Maven Central's native libraries into); also used by the torch
 *       backend;</li>
 *   <li>{@code Calls} (package-private) holds every raw {@code MethodHandle} with its C declaration;</li>
 *   <li>{@link tenmin.engine.blas.OpenBlas}: row-major operations on Java arrays. Arrays are passed to the
 *       library in place (critical downcalls with heap access: no copies); nothing outside this package
 *       sees a pointer.</li>
 * </ul>
 * Besides {@code tenmin.engine.backend.torch}, this is the only package that makes native downcalls.
 * Imports nothing of tenmin.
 */
package tenmin.engine.blas;
