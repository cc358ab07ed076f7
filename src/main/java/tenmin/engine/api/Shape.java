package tenmin.engine.api;

import java.util.Arrays;

/**
 * The sizes of a tensor's dimensions, outermost first (row-major), immutable.
 *
 * <p>A shape of rank 0 is a scalar (one element). Dimension arguments may be negative and count
 * from the end, as in PyTorch ({@code -1} is the last dimension). Sizes are {@code int}: the
 * largest SDXL tensor has far fewer than 2<sup>31</sup> elements; {@link #numel()} is a
 * {@code long} so sums over many tensors do not overflow.
 */
public final class Shape {
    private static final Shape SCALAR = new Shape(new int[0]);

    private final int[] dims;

    private Shape(int[] dims) {
        this.dims = dims;
    }

    /** A shape with these sizes, e.g. {@code Shape.of(2, 4, 16, 16)}; every size must be >= 0. */
    public static Shape of(int... dims) {
        for (int d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(dims));
            }
        }
        return dims.length == 0 ? SCALAR : new Shape(dims.clone());
    }

    /** A shape from {@code long} sizes (safetensors headers), each of which must fit an int. */
    public static Shape of(long[] dims) {
        int[] d = new int[dims.length];
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < 0 || dims[i] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("dimension out of range in shape " + Arrays.toString(dims));
            }
            d[i] = (int) dims[i];
        }
        return of(d);
    }

    /** The rank-0 shape of a single value (losses). */
    public static Shape scalar() {
        return SCALAR;
    }

    /** Number of dimensions. */
    public int rank() {
        return dims.length;
    }

    /** Size of dimension {@code dim} (negative counts from the end). */
    public int dim(int dim) {
        return dims[axis(dim)];
    }

    /** A copy of the sizes. */
    public int[] dims() {
        return dims.clone();
    }

    /** The sizes as longs (for native calls and file headers). */
    public long[] dimsLong() {
        long[] out = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            out[i] = dims[i];
        }
        return out;
    }

    /** Number of elements (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (int d : dims) {
            n *= d;
        }
        return n;
    }

    /** Number of elements as an int, throwing when it does not fit (host arrays are int-indexed). */
    public int numelInt() {
        long n = numel();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("shape " + this + " has " + n + " elements, more than a Java array holds");
        }
        return (int) n;
    }

    /**
     * The non-negative index of dimension {@code dim}, accepting {@code -rank <= dim < rank}.
     *
     * @throws IllegalArgumentException when out of range
     */
    public int axis(int dim) {
        int a = dim < 0 ? dim + dims.length : dim;
        if (a < 0 || a >= dims.length) {
            throw new IllegalArgumentException("dimension " + dim + " out of range for shape " + this);
        }
        return a;
    }

    /** Product of the sizes of dimensions {@code [from, to)}. */
    public long numel(int from, int to) {
        long n = 1;
        for (int i = from; i < to; i++) {
            n *= dims[i];
        }
        return n;
    }

    /** This shape with dimension {@code dim} set to {@code size}. */
    public Shape with(int dim, int size) {
        int[] d = dims.clone();
        d[axis(dim)] = size;
        return of(d);
    }

    /** This shape without its last dimension plus {@code size} appended: {@code (.., K) -> (.., size)}. */
    public Shape withLast(int size) {
        return with(-1, size);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    /** PyTorch-style {@code (2, 4, 16, 16)}; a scalar is {@code ()}. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < dims.length; i++) {
            if (i > 0) {
                b.append(", ");
            }
            b.append(dims[i]);
        }
        return b.append(')').toString();
    }

    /** NumPy broadcasting of two shapes, or null when they are incompatible. */
    public static Shape broadcast(Shape a, Shape b) {
        int rank = Math.max(a.rank(), b.rank());
        int[] out = new int[rank];
        for (int i = 0; i < rank; i++) {
            int da = i < rank - a.rank() ? 1 : a.dim(i - (rank - a.rank()));
            int db = i < rank - b.rank() ? 1 : b.dim(i - (rank - b.rank()));
            if (da != db && da != 1 && db != 1) {
                return null;
            }
            out[i] = da == 1 ? db : da;
        }
        return Shape.of(out);
    }

}
