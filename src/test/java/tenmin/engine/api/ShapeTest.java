package tenmin.engine.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ShapeTest {
    @Test
    void dimensionsCountFromEitherEnd() {
        Shape s = Shape.of(2, 4, 16, 24);
        assertEquals(24, s.dim(-1));
        assertEquals(2, s.dim(0));
        assertEquals(3, s.axis(-1));
        assertEquals(2L * 4 * 16 * 24, s.numel());
        assertEquals(64, s.numel(1, 3));
        assertEquals("(2, 4, 16, 24)", s.toString());
        assertEquals(Shape.of(2, 4, 16, 8), s.withLast(8));
        assertThrows(IllegalArgumentException.class, () -> s.dim(4));
        assertThrows(IllegalArgumentException.class, () -> s.dim(-5));
    }

    @Test
    void scalarHasOneElement() {
        assertEquals(1, Shape.scalar().numel());
        assertEquals("()", Shape.scalar().toString());
        assertEquals(Shape.scalar(), Shape.of());
    }

    @Test
    void rejectsNegativeAndOversizedDimensions() {
        assertThrows(IllegalArgumentException.class, () -> Shape.of(2, -1));
        assertThrows(IllegalArgumentException.class, () -> Shape.of(new long[] {1L << 33}));
    }

    @Test
    void dtypeAndDeviceParseTheUsualSpellings() {
        assertEquals(DType.BF16, DType.parse("bfloat16"));
        assertEquals(DType.F16, DType.parse("fp16"));
        assertEquals(DType.I64, DType.of(tenmin.formats.StDType.I64));
        assertThrows(IllegalArgumentException.class, () -> DType.of(tenmin.formats.StDType.U8));
        assertEquals(Device.cuda(1), Device.parse("cuda:1"));
        assertEquals(Device.cuda(0), Device.parse("cuda"));
        assertEquals("cpu", Device.parse("CPU").toString());
        assertThrows(IllegalArgumentException.class, () -> Device.parse("tpu"));
    }
}
