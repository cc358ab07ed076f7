package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

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
 */
public final class LibTorch {
    private final Shim shim;
    private final LibTorchLocator.Found found;
    private final List<Path> loaded;
    private final int cudaDevices;
    private final String cudaProblem;

    private LibTorch(Shim shim, LibTorchLocator.Found found, List<Path> loaded, int cudaDevices, String cudaProblem) {
        this.shim = shim;
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
        Path dir = found.libDir();
        List<Path> order = new ArrayList<>();
        addIfPresent(order, dir.resolve("libgomp.so.1"));
        addIfPresent(order, dir.resolve("libc10.so"));
        Path openblas = dir.resolve("libopenblas.so.0");
        if (Files.isRegularFile(openblas)) {
            Path system = systemLibrary("libopenblas.so.0");
            order.add(system != null ? system : openblas);
        }
        order.add(dir.resolve("libtorch_cpu.so"));
        boolean cuda = found.hasCuda();
        if (cuda) {
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
        return new LibTorch(shim, found, order, devices, problem);
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

    /** One line for logs: version, ABI, source, folder and devices. */
    public String describe() {
        return String.format(Locale.ROOT, "libtorch %s (stable ABI %s) from %s at %s; devices: cpu%s", version(),
                abiVersionString(), source(), libDir(),
                cudaDevices > 0 ? ", cuda:0" + (cudaDevices > 1 ? "..cuda:" + (cudaDevices - 1) : "")
                        : " (no CUDA: " + cudaProblem + ")");
    }

    @Override
    public String toString() {
        return describe();
    }

    private static void addIfPresent(List<Path> order, Path lib) {
        if (Files.isRegularFile(lib)) {
            order.add(lib);
        }
    }

    /** The path of {@code soname} in the dynamic linker's cache ({@code ldconfig -p}), or null. */
    static Path systemLibrary(String soname) {
        for (String ldconfig : new String[] {"/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"}) {
            Process p;
            try {
                p = new ProcessBuilder(ldconfig, "-p").redirectErrorStream(true).start();
            } catch (IOException e) {
                continue;
            }
            try (InputStream in = p.getInputStream()) {
                String out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor(10, TimeUnit.SECONDS);
                for (String line : out.split("\n")) {
                    String t = line.trim();
                    int arrow = t.indexOf("=>");
                    if (t.startsWith(soname + " ") && t.contains("x86-64") && arrow > 0) {
                        Path path = Path.of(t.substring(arrow + 2).trim());
                        if (Files.isRegularFile(path)) {
                            return path;
                        }
                    }
                }
                return null;
            } catch (IOException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }
}
