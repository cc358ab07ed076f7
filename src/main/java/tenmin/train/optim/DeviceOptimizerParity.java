package tenmin.train.optim;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.train.Rng;

/**
 * {@link DeviceClybW} on a backend against the host {@link ClybW} with {@link GradClip} on the same gradients:
 * LoCon-like parameters (2-d and 4-d, shapes repeated, two groups with their own learning rates), rows of gradients
 * at scales from 0.01 to 10 and one row of zeros, three steps with clipping on, off and not reached. Used by the
 * tests on the CPU libtorch and by the GPU check ({@code GpuStepParity}) on CUDA.
 */
public final class DeviceOptimizerParity {
    private DeviceOptimizerParity() {
    }

    /**
     * The largest differences found, each relative to the largest magnitude of its reference tensor.
     *
     * @param values  parameter values after each step
     * @param moments the exported moments after the last step
     * @param norm    the gradient norms the two report
     * @param worst   the tensor and step of the largest value difference
     */
    public record Result(double values, double moments, double norm, String worst) {
        public boolean within(double bound) {
            return values <= bound && moments <= bound && norm <= bound;
        }
    }

    /** Learning rates of the two groups ("text encoder", "U-Net"). */
    static final double[] LRS = {1e-4, 3e-4};
    /** Clipping of each step: the norms are in the hundreds, so 5 clips, 0 turns it off and 1e9 is not reached. */
    static final double[] MAX_NORMS = {5, 0, 1e9};

    /** Runs the comparison for {@code h} on {@code backend} (which must {@link Backend#canAlias}). */
    public static Result compare(Backend backend, ClybW.Hyper h, boolean lodeW, long seed) {
        ClybW host = lodeW ? ClybW.lodeW(h) : new ClybW(h);
        ClybW device = lodeW ? ClybW.lodeW(h) : new ClybW(h);
        Rng rng = new Rng(seed);
        List<List<Param>> params = loconLike(rng);
        List<List<Param>> hostParams = copy(params);
        List<ParamGroup> hostGroups = new ArrayList<>();
        for (int g = 0; g < hostParams.size(); g++) {
            hostGroups.add(new ParamGroup("g" + g, LRS[g], hostParams.get(g)));
        }
        double worstValue = 0;
        double worstNorm = 0;
        String worst = "";
        try (Scope scope = Scope.root(backend, "device optimizer parity")) {
            List<List<Tensor>> tensors = deviceTensors(scope, params);
            DeviceClybW opt = DeviceClybW.pack(device, params, tensors, scope);
            for (int step = 0; step < MAX_NORMS.length; step++) {
                float[][][] grads = randomGradients(params, rng);
                setGradients(scope, params, tensors, grads);
                for (int g = 0; g < grads.length; g++) {
                    for (int i = 0; i < grads[g].length; i++) {
                        hostParams.get(g).get(i).zeroGrad();
                        hostParams.get(g).get(i).accumulateGrad(grads[g][i]);
                    }
                }
                double hostNorm = GradClip.clip(hostGroups, MAX_NORMS[step]);
                host.step(hostGroups, LRS);
                double deviceNorm = opt.step(LRS, MAX_NORMS[step]);
                worstNorm = Math.max(worstNorm, Math.abs(hostNorm - deviceNorm) / hostNorm);
                for (int g = 0; g < params.size(); g++) {
                    for (int i = 0; i < params.get(g).size(); i++) {
                        Param p = hostParams.get(g).get(i);
                        double d = relative(p.value(), tensors.get(g).get(i).toHost());
                        if (d > worstValue) {
                            worstValue = d;
                            worst = p.name() + " after step " + (step + 1);
                        }
                    }
                }
            }
            OptimizerState hs = host.exportState();
            OptimizerState ds = opt.exportState();
            double worstMoment = hs.steps().equals(ds.steps()) && hs.tensors().keySet().equals(ds.tensors().keySet())
                    ? 0 : Double.POSITIVE_INFINITY;
            for (Map.Entry<String, float[]> e : hs.tensors().entrySet()) {
                float[] other = ds.tensors().get(e.getKey());
                worstMoment = Math.max(worstMoment, other == null ? Double.POSITIVE_INFINITY
                        : relative(e.getValue(), other));
            }
            return new Result(worstValue, worstMoment, worstNorm, worst);
        }
    }

    /** max|a - b| / max|a| (0 when both are zero). */
    private static double relative(float[] ref, float[] got) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < ref.length; i++) {
            diff = Math.max(diff, Math.abs((double) ref[i] - got[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        return diff == 0 ? 0 : diff / scale;
    }

    /** Two groups of LoCon-like parameters with small random values. */
    static List<List<Param>> loconLike(Rng rng) {
        long[][][] shapes = {
                {{8, 40}, {24, 8}, {8, 40}, {24, 8}},                                          // "text encoder"
                {{4, 6, 3, 3}, {10, 4, 1, 1}, {4, 6, 3, 3}, {10, 4, 1, 1}, {8, 40}, {3, 8}},  // "U-Net"
        };
        List<List<Param>> out = new ArrayList<>();
        for (int g = 0; g < shapes.length; g++) {
            List<Param> ps = new ArrayList<>();
            for (int i = 0; i < shapes[g].length; i++) {
                long[] shape = shapes[g][i];
                int n = 1;
                for (long d : shape) {
                    n *= (int) d;
                }
                float[] v = new float[n];
                for (int k = 0; k < n; k++) {
                    v[k] = (float) (0.1 * rng.nextGaussian());
                }
                ps.add(new Param("g" + g + "p" + i, shape, v));
            }
            out.add(ps);
        }
        return out;
    }

    /** Random gradients, each row at its own scale around its own mean; row 1 of each group's first tensor zero. */
    static float[][][] randomGradients(List<List<Param>> params, Rng rng) {
        float[][][] out = new float[params.size()][][];
        for (int g = 0; g < params.size(); g++) {
            out[g] = new float[params.get(g).size()][];
            for (int i = 0; i < params.get(g).size(); i++) {
                Param p = params.get(g).get(i);
                int rows = p.rows();
                int cols = p.numel() / rows;
                float[] v = new float[p.numel()];
                for (int r = 0; r < rows; r++) {
                    double scale = (r == 1 && i == 0) ? 0 : Math.pow(10, -2 + 3 * rng.nextDouble());
                    double shift = rng.nextGaussian();
                    for (int c = 0; c < cols; c++) {
                        v[r * cols + c] = (float) (scale * (shift + rng.nextGaussian()));
                    }
                }
                out[g][i] = v;
            }
        }
        return out;
    }

    /** Copies of the parameters (own value arrays). */
    static List<List<Param>> copy(List<List<Param>> params) {
        List<List<Param>> out = new ArrayList<>();
        for (List<Param> g : params) {
            List<Param> c = new ArrayList<>();
            for (Param p : g) {
                c.add(new Param(p.name(), p.shape(), p.value().clone()));
            }
            out.add(c);
        }
        return out;
    }

    /** Device fp32 tensors holding the parameters' values, requiring gradients. */
    static List<List<Tensor>> deviceTensors(Scope scope, List<List<Param>> params) {
        List<List<Tensor>> out = new ArrayList<>();
        for (List<Param> g : params) {
            List<Tensor> ts = new ArrayList<>();
            for (Param p : g) {
                ts.add(scope.fromHost(p.value().clone(), Shape.of(p.shape()), DType.F32).named(p.name()).requireGrad());
            }
            out.add(ts);
        }
        return out;
    }

    /** Writes {@code grads[g][i]} into the device gradients. */
    static void setGradients(Scope scope, List<List<Param>> params, List<List<Tensor>> tensors, float[][][] grads) {
        for (int g = 0; g < grads.length; g++) {
            for (int i = 0; i < grads[g].length; i++) {
                Tensor t = tensors.get(g).get(i);
                try (Scope tmp = scope.child("gradient")) {
                    scope.backend().copyInto(t.grad(), tmp.fromHost(grads[g][i], t.shape(), DType.F32));
                }
            }
        }
    }
}
