package tenmin.engine.backend.torch;

/**
 * Counter-based random numbers computed on the device with ATen int64/float64 kernels, value for value
 * the stream of the {@code cpu} backend: value {@code c} of seed {@code s} is the SplitMix64 finaliser
 * (Steele, Lea &amp; Flood 2014) of {@code s·φ + c·M + φ}; a normal is Box–Muller on its two 24-bit
 * fields, a uniform uses the top 24 bits. No host round trip, so drawing noise is not a sync point.
 */
final class Random {
    private static final long GOLDEN = 0x9E37_79B9_7F4A_7C15L;
    private static final long COUNTER_MIX = 0xD1B5_4A32_D192_ED03L;
    private static final long C1 = 0xBF58_476D_1CE4_E5B9L;
    private static final long C2 = 0x94D0_49BB_1331_11EBL;
    private static final double TWO_POW_M24 = 0x1.0p-24;

    private Random() {
    }

    /** The 64 random bits of counters {@code first .. first+count-1}, an int64 tensor (count). */
    static NativeTensor bits(Aten at, long seed, long first, long count) {
        // z_c = c·M + seed·φ + φ for c = first + i, as a wrapping int64 prefix sum: [z_first, M, M, ...].
        NativeTensor steps = at.empty(new long[] {count}, at.shim.dtypeI64);
        NativeTensor z;
        try (steps) {
            try (NativeTensor mix = at.scalarLong(COUNTER_MIX)) {
                fill(at, steps, mix);
            }
            if (count > 0) {
                try (NativeTensor head = at.narrow(steps, 0, 0, 1);
                     NativeTensor start = at.scalarLong(first * COUNTER_MIX + seed * GOLDEN + GOLDEN)) {
                    fill(at, head, start);
                }
            }
            try (Dispatch d = at.dispatch("aten::cumsum", "")) {
                z = d.tensor(steps).i(0).none().call1();
            }
        }
        NativeTensor z2 = xorShiftMul(at, xorShiftMul(at, z, 30, C1), 27, C2);
        try (z2; NativeTensor sh = shiftRightLogical(at, z2, 31)) {
            return at.binary("aten::bitwise_xor", "Tensor", z2, sh);
        }
    }

    /** {@code t.fill_(value)} with a 0-dim tensor value (exact for int64, unlike a double Scalar). */
    private static void fill(Aten at, NativeTensor t, NativeTensor value) {
        try (Dispatch d = at.dispatch("aten::fill_", "Tensor")) {
            d.tensor(t).tensor(value).call1().close();
        }
    }

    /** {@code (z ^ (z >>> k)) * c}; closes {@code z}. */
    private static NativeTensor xorShiftMul(Aten at, NativeTensor z, int k, long c) {
        try (z; NativeTensor sh = shiftRightLogical(at, z, k);
             NativeTensor x = at.binary("aten::bitwise_xor", "Tensor", z, sh);
             NativeTensor ct = at.scalarLong(c)) {
            return at.binary("aten::mul", "Tensor", x, ct);
        }
    }

    /** {@code z >>> k} for int64: an arithmetic shift, then the sign copies masked off. */
    private static NativeTensor shiftRightLogical(Aten at, NativeTensor z, int k) {
        try (NativeTensor kt = at.scalarLong(k);
             NativeTensor shifted = at.binary("aten::bitwise_right_shift", "Tensor", z, kt);
             NativeTensor mask = at.scalarLong((1L << (64 - k)) - 1)) {
            return at.binary("aten::bitwise_and", "Tensor", shifted, mask);
        }
    }

    /** {@code (r >>> shift) & mask} as float64. */
    private static NativeTensor field(Aten at, NativeTensor r, int shift, long mask) {
        try (NativeTensor sh = shiftRightLogical(at, r, shift); NativeTensor m = at.scalarLong(mask);
             NativeTensor f = at.binary("aten::bitwise_and", "Tensor", sh, m)) {
            NativeTensor out = at.empty(f.sizes(), at.shim.dtypeF64);
            at.copyInto(out, f);
            return out;
        }
    }

    /** Standard normals (float64) from bits: {@code sqrt(-2 ln u1) cos(2π u2)}, u1 in (0, 1], u2 in [0, 1). */
    static NativeTensor normal(Aten at, NativeTensor r) {
        try (NativeTensor hi = field(at, r, 40, 0xFF_FFFFL);
             NativeTensor lo = field(at, r, 8, 0xFF_FFFFL);
             NativeTensor hi1 = at.addScalar(hi, 1.0, 1.0);
             NativeTensor u1 = at.mulScalar(hi1, TWO_POW_M24);
             NativeTensor logU1 = at.unary("aten::log", u1);
             NativeTensor m2 = at.mulScalar(logU1, -2.0);
             NativeTensor radius = at.unary("aten::sqrt", m2);
             NativeTensor u2 = at.mulScalar(lo, TWO_POW_M24);
             NativeTensor angle = at.mulScalar(u2, 2 * Math.PI);
             NativeTensor cos = at.unary("aten::cos", angle)) {
            return at.binary("aten::mul", "Tensor", radius, cos);
        }
    }

    /** Uniforms (float64) in [low, high) from bits: {@code low + (high - low) u}, u from the top 24 bits. */
    static NativeTensor uniform(Aten at, NativeTensor r, double low, double high) {
        try (NativeTensor hi = field(at, r, 40, 0xFF_FFFFL);
             NativeTensor u = at.mulScalar(hi, TWO_POW_M24);
             NativeTensor scaled = at.mulScalar(u, high - low)) {
            return at.addScalar(scaled, low, 1.0);
        }
    }

    /** float64 values rounded to fp32 (as the cpu backend's {@code (float)} cast), then to {@code dtype}, shaped. */
    static NativeTensor finish(Aten at, NativeTensor values64, long[] sizes, int dtype) {
        try (NativeTensor f32 = at.empty(values64.sizes(), at.shim.dtypeF32)) {
            at.copyInto(f32, values64);
            NativeTensor out = at.empty(sizes, dtype);
            try (NativeTensor v = at.view(f32, sizes)) {
                at.copyInto(out, v);
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        }
    }
}
