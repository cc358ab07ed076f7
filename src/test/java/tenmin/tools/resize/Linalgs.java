package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.util.List;

import tenmin.engine.blas.OpenBlas;

/** Both linear algebra implementations; the build unpacks OpenBLAS, so its absence is a failure. */
final class Linalgs {
    private Linalgs() {
    }

    /** The OpenBLAS implementation (fails the test, naming why, when none is found). */
    static Linalg openBlas() {
        OpenBlas.Found f = OpenBlas.find();
        assertNotNull(f.blas(), () -> "no OpenBLAS (the build unpacks it from Maven Central): " + f.why());
        return Linalg.openBlas(f.blas());
    }

    /** Java kernels first, then OpenBLAS. */
    static List<Linalg> all() {
        return List.of(Linalg.JAVA, openBlas());
    }
}
