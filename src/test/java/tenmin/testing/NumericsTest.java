package tenmin.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NumericsTest {
    @Test
    void acceptsWithinRelativeTolerance() {
        Numerics.assertRelClose("t", new long[] {2}, new float[] {1f, -2f}, new float[] {1f, -2.00001f}, 1e-5);
    }

    @Test
    void reportsNameShapeAndWorstIndexOnFailure() {
        AssertionError e = assertThrows(AssertionError.class, () -> Numerics.assertRelClose("eps",
                new long[] {2, 2}, new float[] {1, 2, 3, 4}, new float[] {1, 2, 3.5f, 4}, 1e-5));
        assertTrue(e.getMessage().contains("eps [2, 2]"), e.getMessage());
        assertTrue(e.getMessage().contains("[1, 0]"), e.getMessage());
    }

    @Test
    void nanIsNeverClose() {
        assertThrows(AssertionError.class, () -> Numerics.assertClose("n", null, new float[] {1},
                new float[] {Float.NaN}, 1, 1));
    }

    @Test
    void rendersMultiIndex() {
        assertEquals("[1, 2] (flat 5)", Numerics.indexString(new long[] {2, 3}, 5));
    }
}
