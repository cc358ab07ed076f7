package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.engine.blas.OpenBlas;

/** Which linear algebra {@code --linalg} gives, with and without an OpenBLAS. */
class LinalgChoiceTest {
    private static final OpenBlas.Found NONE = new OpenBlas.Found(null, List.of("TENMIN_OPENBLAS=off"));

    @Test
    void autoFallsBackToJavaAndOpenblasSaysWhyItIsMissing() {
        assertSame(Linalg.JAVA, Linalg.of(LinearAlgebra.AUTO, () -> NONE));
        InputException e = assertThrows(InputException.class, () -> Linalg.of(LinearAlgebra.OPENBLAS, () -> NONE));
        assertTrue(e.getMessage().startsWith("--linalg openblas: no usable OpenBLAS (TENMIN_OPENBLAS=off)"), e.getMessage());
        assertSame(Linalg.JAVA, Linalg.of(LinearAlgebra.JAVA, () -> {
            throw new AssertionError("java never looks for OpenBLAS");
        }));
    }

    @Test
    void autoAndOpenblasUseTheLibraryWhenFound() {
        OpenBlas.Found found = OpenBlas.find();
        assertTrue(Linalg.of(LinearAlgebra.AUTO, () -> found) instanceof BlasLinalg, found.why());
        assertTrue(Linalg.of(LinearAlgebra.OPENBLAS, () -> found) instanceof BlasLinalg, found.why());
    }
}
