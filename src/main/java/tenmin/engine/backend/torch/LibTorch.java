package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import tenmin.core.Switch;
import tenmin.engine.blas.NativeLibraries;

/**
 * A loaded libtorch: its folder, where it came from, its version, and whether CUDA devices are usable.
 *
 * <p>Loading order matters because the dynamic linker must find each dependency when
 * {@code libtorch_cpu.so} loads: the OpenMP runtime and {@code libc10.so} of the same folder, then
 * OpenBLAS (Debian's {@code libopenblas.so.0} when the system has one, else the copy beside the
 * Maven Central libtorch), then {@code libtorch_cpu.so}, then {@code libc10_cuda.so} and
 * {@code libtorch_cuda.so} when present. Each is loaded by absolute path. Libraries stay loaded for the
 * life of the process (the dynamic linker cannot unload libtorch safely), so a {@code LibTorch} needs no
 * closing; {@link TorchBackend}s made from it own the tensors.
 *
 * <p>Loading also sets ATen's process-wide math switches to {@link MathMode#EXACT} (no TF32, bf16 products
 * accumulated in fp32 throughout), the engine's contract; {@link #setMathMode} changes them.
 */
public final class LibTorch {
    private final Shim shim;
    private final LibTorchLocator.Found found;
    private final List<Path> loaded;
    private final int cudaDevices;
    private final String cudaProblem;
    /** The CUDA allocator's settings in force ({@link #preferExpandableSegments}), null without CUDA. */
    private final String cudaAllocator;
    /** What {@link #setMathMode} last applied (load applies {@link MathMode#EXACT}). */
    private String mathMode;

    private LibTorch(Shim shim, LibTorchLocator.Found found, List<Path> loaded, int cudaDevices, String cudaProblem,
                     String cudaAllocator) {
        this.shim = shim;
        this.cudaAllocator = cudaAllocator;
        this.found = found;
        this.loaded = List.copyOf(loaded);
        this.cudaDevices = cudaDevices;
        this.cudaProblem = cudaProblem;
    }

    /** Finds libtorch with {@link LibTorchLocator#standard()} and loads it. */
    public static LibTorch locateAndLoad() {
        return load(LibTorchLocator.standard().locate());
    }

    /** Loads the libtorch of {@code found}; throws {@link TorchException} naming the library that failed. */
    public static LibTorch load(LibTorchLocator.Found found) {
        preferPassiveOpenMpWait();
        Path dir = found.libDir();
        List<Path> order = new ArrayList<>();
        addIfPresent(order, dir.resolve("libgomp.so.1"));
        addIfPresent(order, dir.resolve("libc10.so"));
        Path openblas = dir.resolve("libopenblas.so.0");
        if (Files.isRegularFile(openblas)) {
            Path system = NativeLibraries.systemLibrary("libopenblas.so.0");
            order.add(system != null ? system : openblas);
        }
        order.add(dir.resolve("libtorch_cpu.so"));
        boolean cuda = found.hasCuda();
        String allocator = null;
        if (cuda) {
            allocator = preferExpandableSegments();
            addIfPresent(order, dir.resolve("libc10_cuda.so"));
            order.add(dir.resolve("libtorch_cuda.so"));
        }
        for (Path lib : order) {
            try {
                System.load(lib.toString());
            } catch (UnsatisfiedLinkError e) {
                throw new TorchException("cannot load " + lib + " (libtorch from " + found.source() + "): "
                        + e.getMessage(), e);
            }
        }
        SymbolLookup lookup = SymbolLookup.libraryLookup(dir.resolve("libtorch_cpu.so"), Arena.global());
        if (cuda) {
            lookup = SymbolLookup.libraryLookup(dir.resolve("libtorch_cuda.so"), Arena.global()).or(lookup);
        }
        Shim shim = new Shim(lookup, cuda);
        int devices = 0;
        String problem = cuda ? null : "this libtorch has no libtorch_cuda.so";
        if (cuda) {
            if (shim.cudaGetDeviceCount == null) {
                problem = "cudaGetDeviceCount not found through libtorch_cuda.so";
            } else {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment count = a.allocate(JAVA_INT);
                    int rc = (int) shim.cudaGetDeviceCount.invokeExact(count);
                    if (rc == 0) {
                        devices = count.get(JAVA_INT, 0);
                        problem = devices == 0 ? "the CUDA runtime sees no GPU" : null;
                    } else {
                        problem = "cudaGetDeviceCount returned CUDA error " + rc + " (no driver or no GPU?)";
                    }
                } catch (Throwable t) {
                    throw Shim.rethrow("cudaGetDeviceCount", t);
                }
            }
        }
        LibTorch lib = new LibTorch(shim, found, order, devices, problem, allocator);
        lib.mathMode = lib.setMathMode(MathMode.EXACT);
        return lib;
    }

    Shim shim() {
        return shim;
    }

    /** The lib folder loaded from. */
    public Path libDir() {
        return found.libDir();
    }

    /** Where the folder came from ({@code TENMIN_LIBTORCH}, python3, Maven Central). */
    public String source() {
        return found.source();
    }

    /** The version stated by the install's files (e.g. {@code 2.11.0+cu130}) or the Maven version. */
    public String version() {
        return found.version();
    }

    /** {@code aoti_torch_abi_version()}: {@code major << 56 | minor << 48 | ...}. */
    public long abiVersion() {
        return shim.abiVersion;
    }

    /** The ABI version as {@code major.minor.patch}. */
    public String abiVersionString() {
        long v = shim.abiVersion;
        return (v >>> 56) + "." + ((v >>> 48) & 0xFF) + "." + ((v >>> 40) & 0xFF);
    }

    /** Number of CUDA devices usable through this libtorch (0 for a CPU-only libtorch or no GPU). */
    public int cudaDeviceCount() {
        return cudaDevices;
    }

    /** Why CUDA is not usable, or null when it is. */
    public String cudaProblem() {
        return cudaProblem;
    }

    /** Candidates the locator rejected before this one, with reasons. */
    public List<String> rejected() {
        return found.rejected();
    }

    /** Libraries loaded, in order. */
    public List<Path> loadedLibraries() {
        return loaded;
    }

    /**
     * ATen's process-wide math switches for fp32 and bf16 products on CUDA (cuBLAS, cuDNN).
     *
     * @param tf32              fp32 matmuls and convolutions may round their inputs to TF32 (10-bit mantissa);
     *                          PyTorch's default for cuDNN, and what kohya sets for the VAE
     * @param bf16SplitReduction bf16 matmuls may add split-K partial sums in bf16 (PyTorch's default); off, every
     *                          bf16 product accumulates in fp32 to the end
     */
    public record MathMode(boolean tf32, boolean bf16SplitReduction) {
        /** The engine's contract: fp32 means fp32, and bf16 products accumulate in fp32 (what the parity checks assume). */
        public static final MathMode EXACT = new MathMode(false, false);
        /** PyTorch's defaults with kohya's TF32 switch: the reference trainer's settings. */
        public static final MathMode REFERENCE = new MathMode(true, true);
        /**
         * What tenmin's commands (train, sample, atlas, bench recipe) use on a GPU: TF32 for fp32 matrix products
         * and convolutions, as the reference trainer sets it on compute capability 8 and newer (trainer-spec §6:
         * it is what the fp32 VAE runs with when latents are cached and samples decoded; PyTorch enables it for
         * cuDNN convolutions by default), with bf16 products reduced in fp32 (the engine's mixed-precision
         * contract). Parity checks keep {@link #EXACT}.
         */
        public static final MathMode COMMANDS = new MathMode(true, false);
    }

    /**
     * Sets ATen's math switches for the whole process (they live in ATen's global context, shared by every
     * backend of this libtorch) and returns what was applied, e.g. {@code TF32 off, bf16 split-K reduction off};
     * a switch this libtorch does not export is named as not set, and the backend keeps ATen's default there.
     */
    public String setMathMode(MathMode mode) {
        if (shim.globalContext == null) {
            mathMode = "math switches not set (at::globalContext not exported)";
            return mathMode;
        }
        List<String> done = new ArrayList<>();
        mathMode = null;
        try {
            MemorySegment ctx = (MemorySegment) shim.globalContext.invokeExact();
            if (shim.setAllowTF32CuDNN != null && shim.setAllowTF32CuBLAS != null) {
                shim.setAllowTF32CuDNN.invokeExact(ctx, mode.tf32());
                shim.setAllowTF32CuBLAS.invokeExact(ctx, mode.tf32());
                done.add("TF32 " + (mode.tf32() ? "on" : "off"));
            } else {
                done.add("TF32 not set (setAllowTF32CuDNN/CuBLAS not exported)");
            }
            if (shim.setAllowBF16ReductionCuBLAS != null) {
                shim.setAllowBF16ReductionCuBLAS.invokeExact(ctx, mode.bf16SplitReduction(), true);
                done.add("bf16 split-K reduction " + (mode.bf16SplitReduction() ? "in bf16" : "in fp32"));
            } else {
                done.add("bf16 reduction not set (setAllowBF16ReductionCuBLAS(bool, bool) not exported)");
            }
        } catch (Throwable t) {
            throw Shim.rethrow("at::Context math switches", t);
        }
        mathMode = String.join(", ", done);
        return mathMode;
    }

    /** What the last {@link #setMathMode} applied; loading applies {@link MathMode#EXACT}. */
    public String mathMode() {
        return mathMode;
    }

    /**
     * The switches as ATen reports them: [TF32 for cuBLAS, bf16 reduced-precision reduction], or null when this
     * libtorch does not export the getters.
     */
    public boolean[] mathSwitches() {
        if (shim.globalContext == null || shim.allowTF32CuBLAS == null || shim.allowBF16ReductionCuBLAS == null) {
            return null;
        }
        try {
            MemorySegment ctx = (MemorySegment) shim.globalContext.invokeExact();
            boolean tf32 = (boolean) shim.allowTF32CuBLAS.invokeExact(ctx);
            boolean bf16 = (byte) shim.allowBF16ReductionCuBLAS.invokeExact(ctx) == 0; // AllowReducedPrecisionWithSplitK
            return new boolean[] {tf32, bf16};
        } catch (Throwable t) {
            throw Shim.rethrow("at::Context math getters", t);
        }
    }

    /**
     * cuDNN's benchmark mode for the commands on a GPU: {@code TENMIN_CUDNN_BENCHMARK=1} (property
     * {@code tenmin.cudnnBenchmark}); off by default, as in PyTorch. On, cuDNN times the algorithms it has for each new
     * convolution shape at its first call and keeps the fastest, instead of taking its heuristic's first choice; a
     * training run has one shape per layer and bucket, so the trials are paid once. An A/B for the device checks
     * ({@code scripts/gpu-all.sh}'s {@code bench-te-none-cudnn}).
     */
    public static final Switch CUDNN_BENCHMARK = new Switch("tenmin.cudnnBenchmark", "TENMIN_CUDNN_BENCHMARK", false);

    /**
     * Sets cuDNN's benchmark mode for the whole process ({@code at::Context::setBenchmarkCuDNN}, see
     * {@link #CUDNN_BENCHMARK}) and returns what was applied, e.g. {@code cuDNN benchmark mode on}, or that this
     * libtorch does not export it.
     */
    public String setCudnnBenchmark(boolean on) {
        if (shim.globalContext == null || shim.setBenchmarkCuDNN == null) {
            return "cuDNN benchmark mode not set (at::Context::setBenchmarkCuDNN not exported)";
        }
        try {
            MemorySegment ctx = (MemorySegment) shim.globalContext.invokeExact();
            shim.setBenchmarkCuDNN.invokeExact(ctx, on);
        } catch (Throwable t) {
            throw Shim.rethrow("at::Context::setBenchmarkCuDNN", t);
        }
        return "cuDNN benchmark mode " + (on ? "on" : "off");
    }

    /** cuDNN's benchmark mode as ATen reports it, or null when this libtorch does not export the getter. */
    public Boolean cudnnBenchmark() {
        if (shim.globalContext == null || shim.benchmarkCuDNN == null) {
            return null;
        }
        try {
            MemorySegment ctx = (MemorySegment) shim.globalContext.invokeExact();
            return (boolean) shim.benchmarkCuDNN.invokeExact(ctx);
        } catch (Throwable t) {
            throw Shim.rethrow("at::Context::benchmarkCuDNN", t);
        }
    }

    /**
     * The command-line switches of ATen's global context for a CUDA device: {@link MathMode#COMMANDS} and, when
     * {@link #CUDNN_BENCHMARK} is on, cuDNN's benchmark mode; returns what was applied, for the {@code device:} line.
     */
    public String applyCommandSwitches(MathMode mode) {
        String applied = setMathMode(mode);
        return CUDNN_BENCHMARK.on() ? applied + ", " + setCudnnBenchmark(true) : applied;
    }

    /** One line for logs: version, ABI, source, folder and devices. */
    public String describe() {
        return String.format(Locale.ROOT, "libtorch %s (stable ABI %s) from %s at %s; devices: cpu%s", version(),
                abiVersionString(), source(), libDir(),
                cudaDevices > 0 ? ", cuda:0" + (cudaDevices > 1 ? "..cuda:" + (cudaDevices - 1) : "") + "; allocator "
                        + cudaAllocator : " (no CUDA: " + cudaProblem + ")");
    }

    @Override
    public String toString() {
        return describe();
    }

    /**
     * Sets {@code OMP_WAIT_POLICY=passive} in the process environment before libgomp is loaded (it reads its
     * settings once, when it loads), unless the user chose {@code OMP_WAIT_POLICY}, {@code GOMP_SPINCOUNT} or
     * {@code OMP_NUM_THREADS}. With libgomp's default, the threads of each parallel CPU kernel spin after it,
     * taking the cores from the Java thread that issues the next op: on the 2-core machine a training step of
     * the tiny model on the CPU libtorch took 4.7 s instead of 0.61 s (docs/PERFORMANCE.md, "OpenMP's wait
     * policy"). GPU work is unaffected: its kernels do not use OpenMP.
     */
    static void preferPassiveOpenMpWait() {
        if (System.getenv("OMP_WAIT_POLICY") != null || System.getenv("GOMP_SPINCOUNT") != null
                || System.getenv("OMP_NUM_THREADS") != null) {
            return;
        }
        setenv("OMP_WAIT_POLICY", "passive");
    }

    /**
     * The CUDA allocator's settings tenmin gives libtorch unless the user set {@code PYTORCH_CUDA_ALLOC_CONF} or
     * {@code PYTORCH_ALLOC_CONF}: expandable segments, so that the cache's blocks grow in place instead of
     * leaving freed blocks of the wrong size behind. The recipe's micro-batch (SDXL, batch 8, full checkpointing)
     * then holds 14.8 instead of 16.4 GiB on an H100 for 14.0 GiB of tensors (docs/PERFORMANCE.md, "GPU results").
     */
    static final String CUDA_ALLOC_CONF = "expandable_segments:True";

    /**
     * Sets {@code PYTORCH_CUDA_ALLOC_CONF} to {@link #CUDA_ALLOC_CONF} before libtorch's CUDA allocator starts,
     * unless the user chose a setting; returns the setting in force, for the log line.
     */
    static String preferExpandableSegments() {
        return preferExpandableSegments(System::getenv);
    }

    /** {@link #preferExpandableSegments()} with the user's environment read through {@code env}. */
    static String preferExpandableSegments(java.util.function.UnaryOperator<String> env) {
        for (String name : List.of("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")) {
            String v = env.apply(name);
            if (v != null) {
                return name + "=" + v + " (the user's)";
            }
        }
        setenv("PYTORCH_CUDA_ALLOC_CONF", CUDA_ALLOC_CONF);
        return "PYTORCH_CUDA_ALLOC_CONF=" + CUDA_ALLOC_CONF + " (tenmin's default)";
    }

    /** libc's {@code setenv(name, value, 0)}: the process environment libraries read with getenv. */
    private static void setenv(String name, String value) {
        Linker linker = Linker.nativeLinker();
        MemorySegment setenv = linker.defaultLookup().find("setenv").orElse(null);
        if (setenv == null) {
            return;
        }
        MethodHandle h = linker.downcallHandle(setenv, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) h.invokeExact(a.allocateFrom(name), a.allocateFrom(value), 0);
            if (rc != 0) {
                throw new TorchException("setenv(" + name + ") failed");
            }
        } catch (Throwable t) {
            throw Shim.rethrow("setenv", t);
        }
    }

    private static void addIfPresent(List<Path> order, Path lib) {
        if (Files.isRegularFile(lib)) {
            order.add(lib);
        }
    }
}
