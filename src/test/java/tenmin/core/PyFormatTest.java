package tenmin.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Expected strings are what CPython 3 prints for the same values. */
class PyFormatTest {
    @Test
    void fixedRoundsTheExactBinaryValueHalfEven() {
        assertEquals("2.67", PyFormat.fixed(2.675, 2));
        assertEquals("-3.56", PyFormat.fixed(-3.555, 2));
        assertEquals("0.12", PyFormat.fixed(0.125, 2));
        assertEquals("-3.55", PyFormat.fixed(-3.55, 2));
        assertEquals("-0.00", PyFormat.fixed(-0.001, 2));
        assertEquals("-0.00", PyFormat.fixed(-0.0, 2));
        assertEquals("-inf", PyFormat.fixed(Double.NEGATIVE_INFINITY, 2));
        assertEquals("-3.726", PyFormat.fixed(-3.725802421569824, 3));
        assertEquals("1.000", PyFormat.fixed(1, 3));
    }

    @Test
    void reprIsShortestRoundTripInPythonLayout() {
        assertEquals("0.5", PyFormat.repr(0.5));
        assertEquals("2.0", PyFormat.repr(2));
        assertEquals("1e-07", PyFormat.repr(1e-7));
        assertEquals("0.0001", PyFormat.repr(1e-4));
        assertEquals("1e-05", PyFormat.repr(1e-5));
        assertEquals("1e+16", PyFormat.repr(1e16));
        assertEquals("1234567890123456.0", PyFormat.repr(1234567890123456.0));
        assertEquals("0.30000001192092896", PyFormat.repr((float) 0.3));
        assertEquals("-1.5e-10", PyFormat.repr(-1.5e-10));
        assertEquals("1.2345678901234568e+17", PyFormat.repr(123456789012345678.0));
        assertEquals("-0.0", PyFormat.repr(-0.0));
        assertEquals("-inf", PyFormat.repr(Double.NEGATIVE_INFINITY));
    }
}
