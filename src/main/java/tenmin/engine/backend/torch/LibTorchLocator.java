package tenmin.engine.backend.torch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.engine.blas.NativeLibraries;

/**
 * Finds a libtorch folder (one holding {@code libtorch_cpu.so} and {@code libc10.so}, and
 * {@code libtorch_cuda.so} when it has CUDA), trying in order:
 * <ol>
 *   <li>the folder named by the environment variable {@value #ENV};</li>
 *   <li>the {@code lib} folder of the {@code torch} package of the {@code python3} on {@code PATH} (Python is
 *       asked where the package is, with a short timeout; it is not imported and not used afterwards);</li>
 *   <li>the CPU libtorch the build unpacks from Maven Central ({@code org.bytedeco:pytorch}, classifier
 *       {@code linux-x86_64}, with OpenBLAS from {@code org.bytedeco:openblas}): the folder named by the
 *       system property {@value NativeLibraries#CACHE_PROPERTY}, else {@value NativeLibraries#DEFAULT_CACHE} under the
 *       user's home ({@link NativeLibraries#buildCache()}).</li>
 * </ol>
 * Every rejected candidate is recorded with the reason, so a failure can say exactly what was tried.
 */
public final class LibTorchLocator {
    /** Environment variable naming a libtorch lib folder. */
    public static final String ENV = "TENMIN_LIBTORCH";

    private static final long PYTHON_TIMEOUT_SECONDS = 20;
    private static final String PYTHON_MARKER = "TENMIN_TORCH_DIR=";
    /** Asks for the package folder without importing torch (no CUDA initialisation, fast). */
    private static final String PYTHON_SCRIPT = "import importlib.util as u; s = u.find_spec('torch');"
            + " print('" + PYTHON_MARKER + "' + (list(s.submodule_search_locations)[0] if s else ''))";

    private final Map<String, String> env;
    private final String python;
    private final Path mavenCache;

    /** A locator with explicit inputs (tests); {@code python} null skips the Python candidate. */
    public LibTorchLocator(Map<String, String> env, String python, Path mavenCache) {
        this.env = Objects.requireNonNull(env, "env");
        this.python = python;
        this.mavenCache = mavenCache;
    }

    /** The locator of this process: its environment, {@code python3} on PATH and the build's cache folder. */
    public static LibTorchLocator standard() {
        return new LibTorchLocator(System.getenv(), "python3", NativeLibraries.buildCache());
    }

    /** Where a libtorch was found and what was tried before. */
    public record Found(Path libDir, String source, String version, List<String> rejected) {
        /** True when the folder has {@code libtorch_cuda.so}. */
        public boolean hasCuda() {
            return Files.isRegularFile(libDir.resolve("libtorch_cuda.so"));
        }

        @Override
        public String toString() {
            return "libtorch " + version + " from " + source + " at " + libDir + (hasCuda() ? " (with CUDA)" : " (CPU only)");
        }
    }

    /** Thrown when no candidate is usable; the message lists each candidate and why it was rejected. */
    public static final class NotFoundException extends IllegalStateException {
        private static final long serialVersionUID = 1L;
        private final List<String> rejected;

        NotFoundException(List<String> rejected) {
            super("no libtorch found: " + String.join("; ", rejected) + ". Set " + ENV
                    + " to a folder with libtorch_cpu.so (e.g. the lib folder of a torch install), or run"
                    + " scripts/test once to unpack the CPU libtorch from Maven Central");
            this.rejected = List.copyOf(rejected);
        }

        public List<String> rejected() {
            return rejected;
        }
    }

    /** The first usable candidate. */
    public Found locate() {
        List<String> rejected = new ArrayList<>();
        String fromEnv = env.get(ENV);
        if (fromEnv == null || fromEnv.isBlank()) {
            rejected.add(ENV + " is not set");
        } else {
            Path dir = Path.of(fromEnv).toAbsolutePath().normalize();
            String why = check(dir);
            if (why == null) {
                return new Found(dir, ENV, versionOf(dir), rejected);
            }
            rejected.add(ENV + "=" + fromEnv + ": " + why);
        }
        if (python == null) {
            rejected.add("python3 lookup disabled");
        } else {
            Path dir = null;
            String why;
            try {
                dir = askPython(python);
                why = dir == null ? python + " has no torch package" : check(dir);
            } catch (IOException e) {
                why = python + " did not answer: " + e.getMessage();
            }
            if (why == null) {
                return new Found(dir, python + " torch package", versionOf(dir), rejected);
            }
            rejected.add("python3 torch: " + why);
        }
        if (mavenCache == null) {
            rejected.add("no Maven Central cache folder configured");
        } else {
            Path dir = mavenCache.toAbsolutePath().normalize();
            String why = check(dir);
            if (why == null) {
                return new Found(dir, "Maven Central (org.bytedeco:pytorch, unpacked by the build)", versionOf(dir),
                        rejected);
            }
            rejected.add("Maven Central libtorch at " + dir + ": " + why);
        }
        throw new NotFoundException(rejected);
    }

    /** Null when {@code dir} looks like a libtorch lib folder, else the reason it does not. */
    static String check(Path dir) {
        if (!Files.isDirectory(dir)) {
            return "no such folder";
        }
        for (String lib : new String[] {"libtorch_cpu.so", "libc10.so"}) {
            Path p = dir.resolve(lib);
            if (!Files.isRegularFile(p)) {
                return "no " + lib + " in it";
            }
            try {
                if (Files.size(p) == 0) {
                    return lib + " is empty";
                }
            } catch (IOException e) {
                return lib + " unreadable: " + e.getMessage();
            }
        }
        return null;
    }

    /** The torch package's lib folder according to {@code python}, or null when it has no torch package. */
    static Path askPython(String python) throws IOException {
        Process p;
        try {
            p = new ProcessBuilder(python, "-c", PYTHON_SCRIPT).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IOException("cannot run it (" + e.getMessage() + ")", e);
        }
        try (InputStream in = p.getInputStream()) {
            p.getOutputStream().close();
            if (!p.waitFor(PYTHON_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("no answer within " + PYTHON_TIMEOUT_SECONDS + " s");
            }
            String out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            String lastLine = "";
            for (String line : out.split("\n")) {
                if (line.startsWith(PYTHON_MARKER)) {
                    String pkg = line.substring(PYTHON_MARKER.length()).trim();
                    return pkg.isEmpty() ? null : Path.of(pkg, "lib");
                }
                if (!line.isBlank()) {
                    lastLine = line.trim();
                }
            }
            throw new IOException("exit code " + p.exitValue() + (lastLine.isEmpty() ? "" : ": " + lastLine));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static final Pattern PY_VERSION = Pattern.compile("__version__\\s*=\\s*['\"]([^'\"]+)['\"]");
    private static final Pattern BYTEDECO = Pattern.compile("libtorch-cpu-(\\d+\\.\\d+\\.\\d+)");

    /**
     * The version the folder's files state, or "unknown version": {@code ../version.py} of a Python
     * install, or the Maven version in the cache folder's name. {@link LibTorch} adds the ABI version.
     */
    static String versionOf(Path libDir) {
        Path versionPy = libDir.getParent() == null ? null : libDir.getParent().resolve("version.py");
        if (versionPy != null && Files.isRegularFile(versionPy)) {
            try {
                Matcher m = PY_VERSION.matcher(Files.readString(versionPy));
                if (m.find()) {
                    return m.group(1);
                }
            } catch (IOException e) {
                // fall through: the version is informational
            }
        }
        // the libtorch zip of pytorch.org: libtorch/build-version beside libtorch/lib, e.g. "2.11.0+cu130"
        Path buildVersion = libDir.getParent() == null ? null : libDir.getParent().resolve("build-version");
        if (buildVersion != null && Files.isRegularFile(buildVersion)) {
            try {
                String v = Files.readString(buildVersion).strip();
                if (!v.isEmpty() && v.length() < 64 && v.indexOf('\n') < 0) {
                    return v;
                }
            } catch (IOException e) {
                // fall through: the version is informational
            }
        }
        Matcher m = BYTEDECO.matcher(libDir.getFileName() == null ? "" : libDir.getFileName().toString());
        return m.find() ? m.group(1) : "(unknown version)";
    }
}
