package tenmin.engine.blas;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A loaded OpenBLAS and the dense operations tenmin uses from it, on row-major Java arrays.
 *
 * <p>Finding it ({@link #find()}, once per process), in order: the library file or folder named by the
 * environment variable {@value #ENV} ({@code off} disables OpenBLAS); the copy the build unpacks from Maven
 * Central ({@code org.bytedeco:openblas}, into {@link NativeLibraries#buildCache()}); the system's
 * {@code libopenblas.so.0} (Debian's libopenblas0). The library runs single-threaded
 * ({@code openblas_set_num_threads(1)}): callers run independent problems on their own threads, and every
 * method may be called from several threads at once.
 *
 * <p>Dimension legend: M, N rows and columns of a result, K the summed dimension.
 */
public final class OpenBlas {
    /** Environment variable naming an OpenBLAS library file or its folder; {@code off} disables it. */
    public static final String ENV = "TENMIN_OPENBLAS";
    static final String SONAME = "libopenblas.so.0";

    /** The outcome of {@link #find()}: the library, or null with the reason of each rejected candidate. */
    public record Found(OpenBlas blas, List<String> rejected) {
        /** Why no OpenBLAS is used, in one line. */
        public String why() {
            return String.join("; ", rejected);
        }
    }

    private static Found found;

    private final Calls calls;
    private final Path path;
    private final String config;

    private OpenBlas(Calls calls, Path path, String config) {
        this.calls = calls;
        this.path = path;
        this.config = config;
    }

    /** The process's OpenBLAS, found and loaded on the first call (see the class comment). */
    public static synchronized Found find() {
        if (found == null) {
            found = locate(System.getenv(ENV), NativeLibraries.buildCache());
        }
        return found;
    }

    /** Tries the candidates in order; {@code env} is the value of {@value #ENV} (may be null). */
    static Found locate(String env, Path buildCache) {
        List<String> rejected = new ArrayList<>();
        List<Path> candidates = new ArrayList<>();
        if (env != null && env.equalsIgnoreCase("off")) {
            rejected.add(ENV + "=off");
            return new Found(null, rejected);
        }
        if (env != null && !env.isBlank()) {
            Path p = Path.of(env);
            candidates.add(Files.isDirectory(p) ? p.resolve(SONAME) : p);
        }
        if (buildCache != null) {
            candidates.add(buildCache.resolve(SONAME));
        }
        for (Path p : candidates) {
            OpenBlas blas = tryLoad(p, rejected);
            if (blas != null) {
                return new Found(blas, rejected);
            }
        }
        Path system = NativeLibraries.systemLibrary(SONAME); // last: asking the linker's cache spawns ldconfig
        if (system == null) {
            rejected.add("no " + SONAME + " in the dynamic linker's cache");
            return new Found(null, rejected);
        }
        return new Found(tryLoad(system, rejected), rejected);
    }

    private static OpenBlas tryLoad(Path p, List<String> rejected) {
        if (!Files.isRegularFile(p)) {
            rejected.add(p + ": no such file");
            return null;
        }
        try {
            return load(p);
        } catch (RuntimeException | LinkageError e) {
            rejected.add(p + ": " + e.getMessage());
            return null;
        }
    }

    /** Loads the OpenBLAS library file {@code path} (its dependencies through its own search path). */
    public static OpenBlas load(Path path) {
        SymbolLookup lookup = SymbolLookup.libraryLookup(path.toAbsolutePath(), Arena.global());
        Calls calls = new Calls(lookup);
        String config;
        try {
            calls.setNumThreads.invokeExact(1);
            MemorySegment s = (MemorySegment) calls.getConfig.invokeExact();
            config = s.reinterpret(4096).getString(0).trim();
        } catch (Throwable t) {
            throw new IllegalStateException("OpenBLAS at " + path + " failed to start: " + t, t);
        }
        OpenBlas blas = new OpenBlas(calls, path, config);
        String wrong = blas.selfTest();
        if (wrong != null) {
            throw new IllegalStateException("OpenBLAS at " + path + " (" + config + ") computes wrong results: " + wrong
                    + " (a 64-bit-integer build under this name?)");
        }
        return blas;
    }

    /**
     * Each entry point once on a small matrix with a known answer; null when all agree, else what did not. Catches a
     * library whose calling convention differs from what {@code Calls} declares before it touches real data.
     */
    String selfTest() {
        double[] a = {1, 2, 3, 4, 5, 6};        // (2, 3)
        double[] g = new double[4];
        gramRows(a, 2, 3, g);                   // [[14, 32], [32, 77]]
        if (!java.util.Arrays.equals(g, new double[] {14, 32, 32, 77})) {
            return "dsyrk gave " + java.util.Arrays.toString(g);
        }
        double[] c = new double[4];
        multiply(false, true, 2, 2, 3, a, a, c); // a·aᵀ again, by dgemm
        if (!java.util.Arrays.equals(c, g)) {
            return "dgemm gave " + java.util.Arrays.toString(c);
        }
        float[] cf = new float[4];
        multiply(false, true, 2, 2, 3, new float[] {1, 2, 3, 4, 5, 6}, new float[] {1, 2, 3, 4, 5, 6}, cf);
        if (!java.util.Arrays.equals(cf, new float[] {14, 32, 32, 77})) {
            return "sgemm gave " + java.util.Arrays.toString(cf);
        }
        double[] r = {4, 2, 2, 5};              // R = [[2, 1], [0, 2]]
        if (!choleskyUpper(r, 2) || !java.util.Arrays.equals(r, new double[] {2, 1, 0, 2})) {
            return "dpotrf gave " + java.util.Arrays.toString(r);
        }
        double[] e = {2, 1, 1, 2};              // eigenvalues 3 and 1
        double[] w = new double[2];
        symmetricEigen(e, 2, w);
        if (Math.abs(w[0] - 3) > 1e-12 || Math.abs(w[1] - 1) > 1e-12) {
            return "dsyevd gave " + java.util.Arrays.toString(w);
        }
        return null;
    }

    /** The library file loaded. */
    public Path path() {
        return path;
    }

    /** OpenBLAS's own build description ({@code openblas_get_config}), e.g. {@code OpenBLAS 0.3.31 DYNAMIC_ARCH ...}. */
    public String config() {
        return config;
    }

    @Override
    public String toString() {
        return config + " at " + path;
    }

    /** {@code c = a·aᵀ} (M, M), both triangles, for {@code a} (M, K). */
    public void gramRows(double[] a, int m, int k, double[] c) {
        syrk(false, a, m, k, c);
    }

    /** {@code c = aᵀ·a} (N, N), both triangles, for {@code a} (K, N). */
    public void gramColumns(double[] a, int k, int n, double[] c) {
        syrk(true, a, n, k, c);
    }

    /** {@code c += a·aᵀ} (M, M) on the upper triangle only, for {@code a} (M, K); {@link #mirrorUpper} completes it. */
    private void addGramRowsUpper(double[] a, int m, int k, double[] c) {
        syrk(false, a, m, k, c, 1.0);
    }

    /** Writes columns {@code [c0, c0 + cb)} of an (M, K) matrix into {@code block} as an (M, cb) row-major matrix. */
    @FunctionalInterface
    public interface ColumnBlocks {
        void fill(int c0, int cb, double[] block);
    }

    /**
     * {@code a·aᵀ} (M, M), both triangles, of an (M, K) matrix that {@code source} delivers in blocks of at most
     * {@code blockCols} columns into {@code block} (at least M·min(K, blockCols) long): each block stays in cache and
     * the whole matrix is never widened at once (a factor read from fp16 or fp32 straight into the block).
     */
    public double[] gramRowsInBlocks(int m, int k, int blockCols, double[] block, ColumnBlocks source) {
        double[] c = new double[m * m];
        for (int c0 = 0; c0 < k; c0 += blockCols) {
            int cb = Math.min(blockCols, k - c0);
            source.fill(c0, cb, block);
            addGramRowsUpper(block, m, cb, c);
        }
        mirrorUpper(c, m);
        return c;
    }

    /** Copies the upper triangle of {@code c} (N, N) into its lower one. */
    private static void mirrorUpper(double[] c, int n) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                c[i * n + j] = c[j * n + i];
            }
        }
    }

    private void syrk(boolean trans, double[] a, int n, int k, double[] c) {
        syrk(trans, a, n, k, c, 0.0);
        mirrorUpper(c, n);
    }

    private void syrk(boolean trans, double[] a, int n, int k, double[] c, double beta) {
        check(a, (long) n * k, "a");
        check(c, (long) n * n, "c");
        try {
            calls.dsyrk.invokeExact(Calls.ROW_MAJOR, Calls.UPPER, trans ? Calls.TRANS : Calls.NO_TRANS, n, k, 1.0,
                    MemorySegment.ofArray(a), trans ? n : k, beta, MemorySegment.ofArray(c), n);
        } catch (Throwable t) {
            throw rethrow("cblas_dsyrk", t);
        }
    }

    /**
     * {@code c = op(a)·op(b)} (M, N) with K summed; {@code op(a)} is (M, K): {@code a} is (M, K), or (K, M) when
     * {@code transA}; likewise {@code b} (K, N) or (N, K).
     */
    public void multiply(boolean transA, boolean transB, int m, int n, int k, double[] a, double[] b, double[] c) {
        check(a, (long) m * k, "a");
        check(b, (long) k * n, "b");
        check(c, (long) m * n, "c");
        try {
            calls.dgemm.invokeExact(Calls.ROW_MAJOR, transA ? Calls.TRANS : Calls.NO_TRANS,
                    transB ? Calls.TRANS : Calls.NO_TRANS, m, n, k, 1.0, MemorySegment.ofArray(a), transA ? m : k,
                    MemorySegment.ofArray(b), transB ? k : n, 0.0, MemorySegment.ofArray(c), n);
        } catch (Throwable t) {
            throw rethrow("cblas_dgemm", t);
        }
    }

    /** {@link #multiply(boolean, boolean, int, int, int, double[], double[], double[])} in fp32. */
    public void multiply(boolean transA, boolean transB, int m, int n, int k, float[] a, float[] b, float[] c) {
        multiplyAdd(transA, transB, m, n, k, 1f, a, 0, transA ? m : k, b, 0, transB ? k : n, 0f, c, 0, n);
    }

    /**
     * {@code c = alpha·op(a)·op(b) + beta·c} in fp32 on sub-arrays: {@code a}, {@code b}, {@code c} start at the
     * given offsets with the given row strides (leading dimensions), as BLAS's {@code sgemm} (row-major).
     */
    public void multiplyAdd(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int aOffset,
                            int lda, float[] b, int bOffset, int ldb, float beta, float[] c, int cOffset, int ldc) {
        check(a, aOffset + (long) ((transA ? k : m) - 1) * lda + (transA ? m : k), "a");
        check(b, bOffset + (long) ((transB ? n : k) - 1) * ldb + (transB ? k : n), "b");
        check(c, cOffset + (long) (m - 1) * ldc + n, "c");
        try {
            calls.sgemm.invokeExact(Calls.ROW_MAJOR, transA ? Calls.TRANS : Calls.NO_TRANS,
                    transB ? Calls.TRANS : Calls.NO_TRANS, m, n, k, alpha, slice(a, aOffset), lda, slice(b, bOffset), ldb,
                    beta, slice(c, cOffset), ldc);
        } catch (Throwable t) {
            throw rethrow("cblas_sgemm", t);
        }
    }

    private static MemorySegment slice(float[] x, int offset) {
        MemorySegment s = MemorySegment.ofArray(x);
        return offset == 0 ? s : s.asSlice(4L * offset);
    }

    /**
     * The Cholesky factor of a symmetric positive definite {@code g} (N, N), in place: on return {@code g} holds
     * the upper-triangular R with RᵀR = G and zeros below the diagonal. Returns false, with {@code g}
     * overwritten, when G is not positive definite (LAPACK's {@code dpotrf} found a pivot that is not positive).
     */
    public boolean choleskyUpper(double[] g, int n) {
        check(g, (long) n * n, "g");
        int[] info = new int[1];
        try {
            // column-major, the row-major G is the same symmetric matrix; the column-major lower factor L
            // (G = L·Lᵀ) lies in the row-major upper triangle as R = Lᵀ
            calls.dpotrf.invokeExact(chars('L'), ints(n), MemorySegment.ofArray(g), ints(Math.max(1, n)),
                    MemorySegment.ofArray(info), 1L);
        } catch (Throwable t) {
            throw rethrow("dpotrf_", t);
        }
        if (info[0] < 0) {
            throw new IllegalStateException("dpotrf_: argument " + -info[0] + " invalid");
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                g[i * n + j] = 0;
            }
        }
        return info[0] == 0;
    }

    /**
     * Eigenvalues and eigenvectors of a symmetric {@code a} (N, N) by LAPACK's divide and conquer
     * ({@code dsyevd}): on return {@code values} (N) holds the eigenvalues in descending order and row i of
     * {@code a} the unit eigenvector of {@code values[i]}.
     */
    public void symmetricEigen(double[] a, int n, double[] values) {
        check(a, (long) n * n, "a");
        check(values, n, "values");
        if (n == 0) {
            return;
        }
        int lwork = 1 + 6 * n + 2 * n * n;
        int liwork = 3 + 5 * n;
        double[] work = new double[lwork];
        int[] iwork = new int[liwork];
        int[] info = new int[1];
        try {
            // column-major eigenvector columns are the rows of the row-major array
            calls.dsyevd.invokeExact(chars('V'), chars('U'), ints(n), MemorySegment.ofArray(a), ints(n),
                    MemorySegment.ofArray(values), MemorySegment.ofArray(work), ints(lwork),
                    MemorySegment.ofArray(iwork), ints(liwork), MemorySegment.ofArray(info), 1L, 1L);
        } catch (Throwable t) {
            throw rethrow("dsyevd_", t);
        }
        if (info[0] != 0) {
            throw new IllegalStateException("dsyevd_ failed with info " + info[0] + " (n = " + n + ")");
        }
        double[] row = new double[n];
        for (int i = 0, j = n - 1; i < j; i++, j--) { // ascending → descending
            double v = values[i];
            values[i] = values[j];
            values[j] = v;
            System.arraycopy(a, i * n, row, 0, n);
            System.arraycopy(a, j * n, a, i * n, n);
            System.arraycopy(row, 0, a, j * n, n);
        }
    }

    private static MemorySegment ints(int v) {
        return MemorySegment.ofArray(new int[] {v});
    }

    private static MemorySegment chars(char c) {
        return MemorySegment.ofArray(new byte[] {(byte) c});
    }

    private static void check(double[] x, long n, String name) {
        if (x.length < n) {
            throw new IllegalArgumentException(name + " holds " + x.length + " values, needs " + n);
        }
    }

    private static void check(float[] x, long n, String name) {
        if (x.length < n) {
            throw new IllegalArgumentException(name + " holds " + x.length + " values, needs " + n);
        }
    }

    private static RuntimeException rethrow(String function, Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(function + " failed: " + t, t);
    }
}
