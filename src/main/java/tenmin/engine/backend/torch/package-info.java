/**
 * The {@code torch} backend: the engine's op contract ({@link tenmin.engine.api.Backend}) on libtorch,
 * called through its stable C shim ({@code aoti_torch_*}, {@code aoti_torch_call_dispatcher}) with the
 * Foreign Function &amp; Memory API. No JNI, no C++ of our own, no Java library of PyTorch.
 *
 * <ul>
 *   <li>{@link tenmin.engine.backend.torch.LibTorchLocator} finds a libtorch folder (environment variable,
 *       the {@code torch} package of {@code python3}, or the CPU libtorch the build unpacks from Maven
 *       Central) and says why each candidate was rejected;</li>
 *   <li>{@link tenmin.engine.backend.torch.LibTorch} loads it (dependencies first, by absolute path) and
 *       reports version and devices;</li>
 *   <li>{@code Shim} (package-private) holds every raw {@code MethodHandle}; {@code NativeTensor} owns one
 *       {@code AtenTensorHandle}; {@code Dispatcher} calls any ATen operator by name;</li>
 *   <li>{@link tenmin.engine.backend.torch.TorchBackend} implements the contract on CPU or CUDA.</li>
 * </ul>
 * The backend is thin: kernels only; every piece of model logic stays in shared Java. This is the only
 * package that makes native downcalls; nothing outside it sees a raw pointer.
 *
 * <p>Imports {@code tenmin.engine.api} and {@code tenmin.core}; never autograd, the {@code cpu} backend,
 * models, lora, train, tools, sample or cli.
 */
package tenmin.engine.backend.torch;
