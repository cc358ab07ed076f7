package tenmin.engine.blas;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * The raw entry points of an OpenBLAS library (LP64: 32-bit integers). BLAS through its C interface
 * (row-major capable); LAPACK through the Fortran symbols (every argument by reference, plus gfortran's
 * hidden lengths of character arguments, passed explicitly as {@code size_t}). Every call but
 * {@code openblas_set_num_threads} is a critical downcall with heap access: Java arrays are passed in place,
 * and no garbage collection can move them during the call.
 */
final class Calls {
    /** {@code CblasRowMajor}. */
    static final int ROW_MAJOR = 101;
    /** {@code CblasNoTrans}, {@code CblasTrans}. */
    static final int NO_TRANS = 111;
    static final int TRANS = 112;
    /** {@code CblasUpper}. */
    static final int UPPER = 121;

    /** {@code void openblas_set_num_threads(int num_threads)}. */
    final MethodHandle setNumThreads;
    /** {@code char *openblas_get_config(void)}. */
    final MethodHandle getConfig;
    /**
     * {@code void cblas_dsyrk(CBLAS_ORDER order, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, blasint n, blasint k,
     * double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc)}.
     */
    final MethodHandle dsyrk;
    /**
     * {@code void cblas_dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transA, CBLAS_TRANSPOSE transB, blasint m,
     * blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b, blasint ldb,
     * double beta, double *c, blasint ldc)}.
     */
    final MethodHandle dgemm;
    /** {@code cblas_sgemm}: as {@code cblas_dgemm} with {@code float} scalars and arrays. */
    final MethodHandle sgemm;
    /**
     * {@code void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info,
     * size_t uplo_len)}.
     */
    final MethodHandle dpotrf;
    /**
     * {@code void dsyevd_(const char *jobz, const char *uplo, const blasint *n, double *a, const blasint *lda,
     * double *w, double *work, const blasint *lwork, blasint *iwork, const blasint *liwork, blasint *info,
     * size_t jobz_len, size_t uplo_len)}.
     */
    final MethodHandle dsyevd;

    Calls(SymbolLookup lookup) {
        Linker linker = Linker.nativeLinker();
        Linker.Option heap = Linker.Option.critical(true);
        setNumThreads = linker.downcallHandle(find(lookup, "openblas_set_num_threads"),
                FunctionDescriptor.ofVoid(JAVA_INT));
        getConfig = linker.downcallHandle(find(lookup, "openblas_get_config"), FunctionDescriptor.of(ADDRESS));
        dsyrk = linker.downcallHandle(find(lookup, "cblas_dsyrk"), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_DOUBLE, ADDRESS, JAVA_INT, JAVA_DOUBLE, ADDRESS, JAVA_INT), heap);
        dgemm = linker.downcallHandle(find(lookup, "cblas_dgemm"), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_DOUBLE, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_DOUBLE,
                ADDRESS, JAVA_INT), heap);
        sgemm = linker.downcallHandle(find(lookup, "cblas_sgemm"), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT), heap);
        dpotrf = linker.downcallHandle(find(lookup, "dpotrf_"), FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_LONG), heap);
        dsyevd = linker.downcallHandle(find(lookup, "dsyevd_"), FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG), heap);
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException("no symbol " + name));
    }
}
