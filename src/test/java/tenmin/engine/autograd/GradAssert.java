package tenmin.engine.autograd;

import java.util.List;
import java.util.Random;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.testing.Numerics;

/** Test helpers: random inputs and the finite-difference assertion shared by the gradient tests. */
final class GradAssert {
    /** Finite-difference step: large enough that fp32 rounding of the forward stays below the tolerance. */
    static final double STEP = 1e-2;
    static final double ABS_TOL = 2e-3;
    static final double REL_TOL = 1e-2;

    private GradAssert() {
    }

    /** A tensor of N(0, scale²) values drawn from {@code seed}, named. */
    static Tensor randn(Scope s, String name, long seed, double scale, int... dims) {
        Random r = new Random(seed);
        float[] v = new float[(int) Shape.of(dims).numel()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return s.fromHost(v, Shape.of(dims), DType.F32).named(name);
    }

    /** Like {@link #randn} and requiring grad. */
    static Tensor param(Scope s, String name, long seed, double scale, int... dims) {
        return randn(s, name, seed, scale, dims).requireGrad();
    }

    /** Asserts analytic = central differences for every input of {@code fn} that requires grad. */
    static void assertGradients(String what, Scope scope, GradCheck.Fn fn, Tensor... inputs) {
        List<GradCheck.InputGrad> results = GradCheck.check(scope, fn, List.of(inputs), STEP, 1234);
        if (results.isEmpty()) {
            throw new AssertionError(what + ": no input requires grad");
        }
        for (GradCheck.InputGrad g : results) {
            Numerics.assertClose(what + " d/d" + g.input().name(), g.input().shape().dimsLong(), g.numeric(),
                    g.analytic(), ABS_TOL, REL_TOL);
        }
    }
}
