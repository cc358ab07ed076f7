package tenmin.engine.autograd;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;

/**
 * Finite-difference gradient check: compares the gradients backward computes with central
 * differences of the same forward.
 *
 * <p>The checked function may return a tensor of any shape; it is reduced to the scalar
 * {@code L = Σ y · R} with a fixed random R (so every output element matters), summed in float64.
 * Every input that {@link Tensor#requireGrad()}s is checked element by element:
 * {@code (L(x + h e_i) - L(x - h e_i)) / 2h}. Inputs must be F32. Use tiny shapes: the cost is two
 * forwards per element.
 */
public final class GradCheck {
    private GradCheck() {
    }

    /** Model code under test: builds the output from the inputs with the given facade. */
    @FunctionalInterface
    public interface Fn {
        Tensor apply(Functional f, List<Tensor> inputs);
    }

    /** Analytic and numeric gradient of one input, flattened, for {@code Numerics} assertions. */
    public record InputGrad(Tensor input, float[] analytic, float[] numeric) {
    }

    /**
     * Checks {@code fn} at {@code inputs} (tensors of {@code scope}) with step {@code step} and the
     * output weights drawn from {@code seed}; returns one entry per input that requires grad. The
     * inputs' accumulated gradients are reset to zero first and hold the analytic gradient afterwards.
     */
    public static List<InputGrad> check(Scope scope, Fn fn, List<Tensor> inputs, double step, long seed) {
        float[] weights;
        try (Scope s = scope.child("gradcheck analytic")) {
            for (Tensor in : inputs) {
                in.zeroGrad();
            }
            Functional f = Functional.training(s);
            Tensor y = fn.apply(f, inputs);
            Random rnd = new Random(seed);
            weights = new float[(int) y.numel()];
            for (int i = 0; i < weights.length; i++) {
                weights[i] = (float) rnd.nextGaussian();
            }
            f.backward(y, s.fromHost(weights, y.shape(), y.dtype()));
        }
        List<InputGrad> out = new ArrayList<>();
        for (Tensor in : inputs) {
            if (!in.requiresGrad()) {
                continue;
            }
            if (in.dtype() != DType.F32) {
                throw new IllegalArgumentException("gradient check needs F32 inputs, got " + in.describe());
            }
            float[] analytic = in.grad().toHost();
            float[] x = in.toHost();
            float[] numeric = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                float orig = x[i];
                x[i] = (float) (orig + step);
                double plus = weightedSum(scope, fn, inputs, in, x, weights);
                x[i] = (float) (orig - step);
                double minus = weightedSum(scope, fn, inputs, in, x, weights);
                x[i] = orig;
                numeric[i] = (float) ((plus - minus) / (2 * step));
            }
            upload(scope, in, x);
            out.add(new InputGrad(in, analytic, numeric));
        }
        return out;
    }

    private static double weightedSum(Scope scope, Fn fn, List<Tensor> inputs, Tensor in, float[] x, float[] weights) {
        upload(scope, in, x);
        try (Scope s = scope.child("gradcheck numeric")) {
            float[] y = fn.apply(Functional.inference(s), inputs).toHost();
            double sum = 0;
            for (int i = 0; i < y.length; i++) {
                sum += (double) y[i] * weights[i];
            }
            return sum;
        }
    }

    private static void upload(Scope scope, Tensor in, float[] x) {
        try (Scope s = scope.child("gradcheck upload")) {
            in.backend().copyInto(in, s.fromHost(x, in.shape(), in.dtype()));
        }
    }
}
