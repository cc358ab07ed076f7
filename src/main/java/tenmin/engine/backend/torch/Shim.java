package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Every raw {@code MethodHandle} of the torch backend, bound to one loaded libtorch. Types of the C side:
 * {@code AOTITorchError} is {@code int32_t} (0 success); {@code AtenTensorHandle} is an opaque pointer
 * owning one reference to an {@code at::Tensor}; {@code StableIValue} is a {@code uint64_t};
 * {@code StableListHandle} and {@code StringHandle} are opaque pointers. Source of truth:
 * {@code torch/csrc/inductor/aoti_torch/c/shim.h}, {@code torch/csrc/stable/c/shim.h} and the generated
 * {@code torch/csrc/inductor/aoti_torch/generated/c_shim_{cpu,cuda}.h} of PyTorch.
 *
 * <h2>Tensor functions ({@code shim.h})</h2>
 * <pre>
 * uint64_t aoti_torch_abi_version(void);
 * int32_t aoti_torch_dtype_float32(void);   // also _bfloat16, _float16, _float8_e4m3fn, _float64, _int64, _bool
 * int32_t aoti_torch_device_type_cpu(void); // also _cuda
 * AOTITorchError aoti_torch_empty_strided(int64_t ndim, const int64_t* sizes_ptr, const int64_t* strides_ptr,
 *     int32_t dtype, int32_t device_type, int32_t device_index, AtenTensorHandle* ret_new_tensor);
 * AOTITorchError aoti_torch_create_tensor_from_blob(void* data, int64_t ndim, const int64_t* sizes_ptr,
 *     const int64_t* strides_ptr, int64_t storage_offset, int32_t dtype, int32_t device_type,
 *     int32_t device_index, AtenTensorHandle* ret);               // does not own data
 * AOTITorchError aoti_torch_delete_tensor_object(AtenTensorHandle tensor);
 * AOTITorchError aoti_torch_new_tensor_handle(AtenTensorHandle orig_handle, AtenTensorHandle* new_handle);
 * AOTITorchError aoti_torch_new_uninitialized_tensor(AtenTensorHandle* ret);   // an undefined at::Tensor()
 * AOTITorchError aoti_torch_get_data_ptr(AtenTensorHandle tensor, void** ret_data_ptr);
 * AOTITorchError aoti_torch_get_dim(AtenTensorHandle tensor, int64_t* ret_dim);
 * AOTITorchError aoti_torch_get_sizes(AtenTensorHandle tensor, int64_t** ret_sizes);     // borrowed
 * AOTITorchError aoti_torch_get_strides(AtenTensorHandle tensor, int64_t** ret_strides); // borrowed
 * AOTITorchError aoti_torch_get_dtype(AtenTensorHandle tensor, int32_t* ret_dtype);
 * AOTITorchError aoti_torch_is_contiguous(AtenTensorHandle tensor, bool* ret_is_contiguous);
 * AOTITorchError aoti_torch__reinterpret_tensor(AtenTensorHandle self, int64_t ndim, const int64_t* sizes_ptr,
 *     const int64_t* strides_ptr, int64_t offset_increment, AtenTensorHandle* ret_new_tensor); // a view, unchecked
 * AOTITorchError aoti_torch_copy_(AtenTensorHandle self, AtenTensorHandle src, int32_t non_blocking);
 * AOTITorchError aoti_torch_scalar_to_tensor_float64(double value, AtenTensorHandle* ret_new_tensor);
 * AOTITorchError aoti_torch_scalar_to_tensor_int64(int64_t value, AtenTensorHandle* ret_new_tensor);
 * void aoti_torch_grad_mode_set_enabled(bool enabled);
 * </pre>
 *
 * <h2>Dispatcher ({@code shim.h}, {@code stable/c/shim.h})</h2>
 * <pre>
 * AOTITorchError aoti_torch_call_dispatcher(const char* opName, const char* overloadName, StableIValue* stack);
 * AOTITorchError torch_call_dispatcher(const char* opName, const char* overloadName, StableIValue* stack,
 *     uint64_t extension_build_version);                       // since 2.10; fallback when the first is gone
 * AOTITorchError torch_new_list_reserve_size(size_t size, StableListHandle* ret);
 * AOTITorchError torch_list_push_back(StableListHandle list_handle, StableIValue element);
 * AOTITorchError torch_delete_list(StableListHandle list_handle);
 * AOTITorchError torch_new_string_handle(const char* data, size_t length, StringHandle* handle); // str arguments
 * AOTITorchError torch_new_stable_ivalue(StableIValue** ret);  // newer releases; else C++ operator new:
 * void* _Znwm(size_t);                                         // operator new(unsigned long), libstdc++
 * </pre>
 * Tensor handles and lists put on the stack are consumed by the call; a non-empty optional argument is a
 * pointer to a heap {@code StableIValue}, freed by the call with {@code delete}, hence the allocation by
 * {@code torch_new_stable_ivalue} or the C++ {@code operator new} of the process.
 *
 * <h2>CUDA runtime (found through libtorch_cuda's dependencies)</h2>
 * <pre>
 * cudaError_t cudaDeviceSynchronize(void);
 * cudaError_t cudaGetDeviceCount(int* count);
 * cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
 * cudaError_t cudaProfilerStart(void);   // and cudaProfilerStop: the region ncu --profile-from-start off records
 * cudaError_t cudaEventCreate(cudaEvent_t* event);          // and cudaEventDestroy(cudaEvent_t)
 * cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);   // stream 0: libtorch's default stream
 * cudaError_t cudaEventSynchronize(cudaEvent_t event);
 * cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
 * </pre>
 *
 * <h2>Math settings of ATen's global context (C++, looked up by mangled name; each may be absent)</h2>
 * The shim has no call for these process-wide switches, so they are reached as the C++ functions they are
 * (Itanium ABI: a member function takes {@code this} first; {@code bool} is a C {@code bool}):
 * <pre>
 * at::Context&amp; at::globalContext();                                  // _ZN2at13globalContextEv
 * void at::Context::setAllowTF32CuDNN(bool);                          // _ZN2at7Context17setAllowTF32CuDNNEb
 * void at::Context::setAllowTF32CuBLAS(bool);                         // _ZN2at7Context18setAllowTF32CuBLASEb
 * bool at::Context::allowTF32CuBLAS() const;                          // _ZNK2at7Context15allowTF32CuBLASEv
 * void at::Context::setAllowBF16ReductionCuBLAS(bool, bool allow_splitk); // _ZN2at7Context27setAllowBF16ReductionCuBLASEbb
 * at::CuBLASReductionOption at::Context::allowBF16ReductionCuBLAS() const; // _ZNK2at7Context24allowBF16ReductionCuBLASEv
 * void at::Context::setBenchmarkCuDNN(bool);                          // _ZN2at7Context17setBenchmarkCuDNNEb
 * bool at::Context::benchmarkCuDNN() const;                           // _ZNK2at7Context14benchmarkCuDNNEv
 * enum class CuBLASReductionOption : uint8_t { AllowReducedPrecisionWithSplitK = 0,
 *     DisallowReducedPrecisionAllowSplitK = 1, DisallowReducedPrecisionDisallowSplitK = 2 };  // (2.10, measured)
 * </pre>
 *
 * <h2>Generated per-device entry points ({@code c_shim_cpu.h}, {@code c_shim_cuda.h})</h2>
 * Looked up as {@code aoti_torch_<device>_<op>} and, since schema changes add a suffix, with the
 * fallbacks {@code _v2}, {@code _v3}; see {@link DeviceOps} for the declarations.
 */
final class Shim {
    private final SymbolLookup lookup;
    private final Linker linker = Linker.nativeLinker();
    private final Map<String, MethodHandle> deviceOps = new HashMap<>();

    final long abiVersion;
    final int dtypeF32;
    final int dtypeBF16;
    final int dtypeF16;
    /** {@code torch.float8_e4m3fn} (kohya's {@code --fp8_base}). */
    final int dtypeF8E4M3;
    final int dtypeF64;
    final int dtypeI64;
    final int deviceTypeCpu;
    final int deviceTypeCuda;

    final MethodHandle emptyStrided;
    final MethodHandle createTensorFromBlob;
    final MethodHandle deleteTensorObject;
    final MethodHandle newTensorHandle;
    final MethodHandle newUninitializedTensor;
    final MethodHandle getDataPtr;
    final MethodHandle getDim;
    final MethodHandle getSizes;
    final MethodHandle getStrides;
    final MethodHandle getDtype;
    final MethodHandle isContiguous;
    final MethodHandle copy;
    final MethodHandle scalarToTensorF64;
    final MethodHandle scalarToTensorI64;
    final MethodHandle gradModeSetEnabled;
    /** {@code aoti_torch__reinterpret_tensor}: views without the dispatcher (null where libtorch lacks it). */
    final MethodHandle reinterpretTensor;
    /** {@code aoti_torch_call_dispatcher}, or null when only {@link #torchCallDispatcher} exists. */
    final MethodHandle callDispatcher;
    /** {@code torch_call_dispatcher} (with a version argument), or null before 2.10. */
    final MethodHandle torchCallDispatcher;
    final MethodHandle newList;
    final MethodHandle listPushBack;
    final MethodHandle deleteList;
    /** {@code torch_new_stable_ivalue}, or null: then {@link #cppNew} allocates optional values. */
    final MethodHandle newStableIValue;
    final MethodHandle cppNew;
    /** {@code torch_new_string_handle}, or null in releases without string arguments. */
    final MethodHandle newStringHandle;
    /** {@code at::globalContext()} and its math switches (see the class comment); each null when not exported. */
    final MethodHandle globalContext;
    final MethodHandle setAllowTF32CuDNN;
    final MethodHandle setAllowTF32CuBLAS;
    final MethodHandle allowTF32CuBLAS;
    final MethodHandle setAllowBF16ReductionCuBLAS;
    final MethodHandle allowBF16ReductionCuBLAS;
    final MethodHandle setBenchmarkCuDNN;
    final MethodHandle benchmarkCuDNN;
    /** CUDA runtime functions, null without libtorch_cuda. */
    final MethodHandle cudaDeviceSynchronize;
    final MethodHandle cudaGetDeviceCount;
    final MethodHandle cudaMemGetInfo;
    final MethodHandle cudaProfilerStart;
    final MethodHandle cudaProfilerStop;
    final MethodHandle cudaEventCreate;
    final MethodHandle cudaEventDestroy;
    final MethodHandle cudaEventRecord;
    final MethodHandle cudaEventSynchronize;
    final MethodHandle cudaEventElapsedTime;

    Shim(SymbolLookup lookup, boolean cuda) {
        this.lookup = lookup;
        abiVersion = (long) invokeConstant("aoti_torch_abi_version", FunctionDescriptor.of(JAVA_LONG));
        dtypeF32 = intConstant("aoti_torch_dtype_float32");
        dtypeBF16 = intConstant("aoti_torch_dtype_bfloat16");
        dtypeF16 = intConstant("aoti_torch_dtype_float16");
        dtypeF8E4M3 = intConstant("aoti_torch_dtype_float8_e4m3fn");
        dtypeF64 = intConstant("aoti_torch_dtype_float64");
        dtypeI64 = intConstant("aoti_torch_dtype_int64");
        deviceTypeCpu = intConstant("aoti_torch_device_type_cpu");
        deviceTypeCuda = intConstant("aoti_torch_device_type_cuda");

        emptyStrided = require("aoti_torch_empty_strided", FunctionDescriptor.of(JAVA_INT,
                JAVA_LONG, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        createTensorFromBlob = require("aoti_torch_create_tensor_from_blob", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        deleteTensorObject = require("aoti_torch_delete_tensor_object", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        newTensorHandle = require("aoti_torch_new_tensor_handle", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        newUninitializedTensor = require("aoti_torch_new_uninitialized_tensor", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getDataPtr = require("aoti_torch_get_data_ptr", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDim = require("aoti_torch_get_dim", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getSizes = require("aoti_torch_get_sizes", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getStrides = require("aoti_torch_get_strides", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDtype = require("aoti_torch_get_dtype", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        isContiguous = require("aoti_torch_is_contiguous", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        copy = require("aoti_torch_copy_", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        scalarToTensorF64 = require("aoti_torch_scalar_to_tensor_float64",
                FunctionDescriptor.of(JAVA_INT, JAVA_DOUBLE, ADDRESS));
        scalarToTensorI64 = require("aoti_torch_scalar_to_tensor_int64",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        gradModeSetEnabled = require("aoti_torch_grad_mode_set_enabled", FunctionDescriptor.ofVoid(JAVA_BOOLEAN));
        reinterpretTensor = optional("aoti_torch__reinterpret_tensor",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));

        callDispatcher = optional("aoti_torch_call_dispatcher", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        torchCallDispatcher = optional("torch_call_dispatcher",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
        if (callDispatcher == null && torchCallDispatcher == null) {
            throw new TorchException("this libtorch exports neither aoti_torch_call_dispatcher nor"
                    + " torch_call_dispatcher (PyTorch 2.8 or newer is needed)");
        }
        newList = require("torch_new_list_reserve_size", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        listPushBack = require("torch_list_push_back", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        deleteList = require("torch_delete_list", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        newStableIValue = optional("torch_new_stable_ivalue", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cppNew = newStableIValue != null ? null : require("_Znwm", FunctionDescriptor.of(ADDRESS, JAVA_LONG));
        newStringHandle = optional("torch_new_string_handle", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));

        globalContext = optional("_ZN2at13globalContextEv", FunctionDescriptor.of(ADDRESS));
        setAllowTF32CuDNN = optional("_ZN2at7Context17setAllowTF32CuDNNEb", FunctionDescriptor.ofVoid(ADDRESS, JAVA_BOOLEAN));
        setAllowTF32CuBLAS = optional("_ZN2at7Context18setAllowTF32CuBLASEb", FunctionDescriptor.ofVoid(ADDRESS, JAVA_BOOLEAN));
        allowTF32CuBLAS = optional("_ZNK2at7Context15allowTF32CuBLASEv", FunctionDescriptor.of(JAVA_BOOLEAN, ADDRESS));
        setAllowBF16ReductionCuBLAS = optional("_ZN2at7Context27setAllowBF16ReductionCuBLASEbb",
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_BOOLEAN, JAVA_BOOLEAN));
        allowBF16ReductionCuBLAS = optional("_ZNK2at7Context24allowBF16ReductionCuBLASEv",
                FunctionDescriptor.of(JAVA_BYTE, ADDRESS));
        setBenchmarkCuDNN = optional("_ZN2at7Context17setBenchmarkCuDNNEb", FunctionDescriptor.ofVoid(ADDRESS, JAVA_BOOLEAN));
        benchmarkCuDNN = optional("_ZNK2at7Context14benchmarkCuDNNEv", FunctionDescriptor.of(JAVA_BOOLEAN, ADDRESS));

        cudaDeviceSynchronize = cuda ? optional("cudaDeviceSynchronize", FunctionDescriptor.of(JAVA_INT)) : null;
        cudaGetDeviceCount = cuda ? optional("cudaGetDeviceCount", FunctionDescriptor.of(JAVA_INT, ADDRESS)) : null;
        cudaMemGetInfo = cuda ? optional("cudaMemGetInfo", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS)) : null;
        cudaProfilerStart = cuda ? optional("cudaProfilerStart", FunctionDescriptor.of(JAVA_INT)) : null;
        cudaProfilerStop = cuda ? optional("cudaProfilerStop", FunctionDescriptor.of(JAVA_INT)) : null;
        cudaEventCreate = cuda ? optional("cudaEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS)) : null;
        cudaEventDestroy = cuda ? optional("cudaEventDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS)) : null;
        cudaEventRecord = cuda ? optional("cudaEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS)) : null;
        cudaEventSynchronize = cuda ? optional("cudaEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS)) : null;
        cudaEventElapsedTime = cuda ? optional("cudaEventElapsedTime",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS)) : null;
        setGradMode(false);
    }

    /** Turns libtorch's autograd recording off: the engine has its own tape, ATen's would only cost time. */
    private void setGradMode(boolean enabled) {
        try {
            gradModeSetEnabled.invokeExact(enabled);
        } catch (Throwable t) {
            throw rethrow("aoti_torch_grad_mode_set_enabled", t);
        }
    }

    /**
     * The generated entry point {@code aoti_torch_<device>_<op>} (or its {@code _v2}/{@code _v3} successor),
     * cached; throws naming the symbols tried when this libtorch has none of them.
     */
    MethodHandle deviceOp(String device, String op, FunctionDescriptor descriptor) {
        String key = device + "/" + op;
        MethodHandle h = deviceOps.get(key);
        if (h == null) {
            String base = "aoti_torch_" + device + "_" + op;
            for (String name : new String[] {base, base + "_v2", base + "_v3"}) {
                h = optional(name, descriptor);
                if (h != null) {
                    break;
                }
            }
            if (h == null) {
                throw new TorchException("this libtorch has no " + base + " (nor _v2/_v3): op " + op
                        + " is not available on " + device);
            }
            deviceOps.put(key, h);
        }
        return h;
    }

    /** True when {@code aoti_torch_<device>_<op>} (or a suffixed successor) exists. */
    boolean hasDeviceOp(String device, String op) {
        String base = "aoti_torch_" + device + "_" + op;
        return lookup.find(base).isPresent() || lookup.find(base + "_v2").isPresent()
                || lookup.find(base + "_v3").isPresent();
    }

    private MethodHandle require(String name, FunctionDescriptor fd) {
        MethodHandle h = optional(name, fd);
        if (h == null) {
            throw new TorchException("libtorch does not export " + name);
        }
        return h;
    }

    private MethodHandle optional(String name, FunctionDescriptor fd) {
        Optional<MemorySegment> sym = lookup.find(name);
        return sym.map(s -> linker.downcallHandle(s, fd)).orElse(null);
    }

    private Object invokeConstant(String name, FunctionDescriptor fd) {
        try {
            return require(name, fd).invoke();
        } catch (Throwable t) {
            throw rethrow(name, t);
        }
    }

    private int intConstant(String name) {
        return (int) invokeConstant(name, FunctionDescriptor.of(JAVA_INT));
    }

    /** Checks an {@code AOTITorchError}. */
    static void check(int rc, String what) {
        if (rc != 0) {
            throw new TorchException(what + " failed (libtorch error code " + rc + "; the reason is on stderr)");
        }
    }

    /** Wraps a throwable from {@code invokeExact} (only linkage errors are possible besides runtime ones). */
    static RuntimeException rethrow(String what, Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new TorchException(what + ": " + t, t);
    }
}
