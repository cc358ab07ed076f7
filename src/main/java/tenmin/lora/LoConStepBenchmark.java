package tenmin.lora;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.models.nn.RandomParams;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.models.sdxl.Unet;
import tenmin.models.sdxl.UnetConfig;

/**
 * Time of one LoCon training step of a U-Net built in memory with random weights: forward, MSE loss,
 * backward into the LoCon parameters (no optimizer update, no text encoders), with and without
 * gradient checkpointing. Warm-up runs first, then the median of timed runs. Behind
 * {@code tenmin bench step}; not a test.
 */
public final class LoConStepBenchmark {
    /** Minimum warm-up time per case, so the JIT has compiled the kernels. */
    public static final long WARMUP_MILLIS = 2000;

    /**
     * A U-Net size and batch to measure.
     *
     * @param name   short label
     * @param config the U-Net
     * @param batch  images per step
     * @param height latent height
     * @param width  latent width
     * @param tokens context length
     * @param ranks  LoCon ranks and alphas
     */
    public record Case(String name, UnetConfig config, int batch, int height, int width, int tokens, LoConRanks ranks) {
    }

    /**
     * One measurement.
     *
     * @param activationBytes bytes held by the step after the forward (saved activations, inputs, loss)
     */
    public record Result(Case benchCase, CheckpointPolicy checkpointing, double medianMillis, long trainableValues,
                         long frozenValues, long activationBytes) {
        public double imagesPerSecond() {
            return benchCase.batch() * 1000.0 / medianMillis;
        }
    }

    private LoConStepBenchmark() {
    }

    /** The fixtures' tiny SDXL (C0 32) at batch 2 on 16x16 latents, and a wider one (C0 64, 32-d heads) at batch 1 on 32x32. */
    public static List<Case> cases() {
        UnetConfig tiny = new UnetConfig(4, 4, 32, List.of(1, 2, 4), 2, List.of(4, 2), List.of(1, 1, 2), 2, 8, 64, 1568);
        UnetConfig small = new UnetConfig(4, 4, 64, List.of(1, 2, 4), 2, List.of(4, 2), List.of(0, 1, 2), 2, 32, 128,
                64 + 1536);
        return List.of(
                new Case("tiny (fixture config), batch 2, 16x16 latents", tiny, 2, 16, 16, 77, new LoConRanks(4, 2, 8, 4)),
                new Case("small (C0 64, SDXL depths 0/1/2), batch 1, 32x32 latents", small, 1, 32, 32, 77,
                        new LoConRanks(8, 4, 32, 4)));
    }

    /** Measures every case with no checkpointing and with every block checkpointed. */
    public static List<Result> run(Backend backend, List<Case> cases, int warmups, int runs, Reporter reporter) {
        List<Result> results = new ArrayList<>();
        try (Reporter.Progress progress = reporter.progress("bench step", cases.size() * 2)) {
            for (Case c : cases) {
                for (CheckpointPolicy policy : List.of(CheckpointPolicy.none(), CheckpointPolicy.all())) {
                    results.add(measure(backend, c, policy, warmups, runs));
                    progress.advance(1);
                }
            }
        }
        return results;
    }

    private static Result measure(Backend backend, Case c, CheckpointPolicy policy, int warmups, int runs) {
        try (Scope model = Scope.root(backend, "bench model")) {
            RandomParams params = RandomParams.of(Unet.KEY_PREFIX, model, DType.F32, 1);
            Unet unet = new Unet(c.config(), params, Unet.Precision.of(DType.F32));
            unet.setCheckpointing(policy);
            List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), c.ranks());
            Generator gen = new Generator(2);
            LoConNetwork net = LoConNetwork.create(targets, model, gen);
            for (LoConModule m : net.modules()) {   // non-zero up, as after a few optimizer steps
                backend.copyInto(m.up(), model.randUniform(m.up().shape(), DType.F32, -0.01, 0.01, gen));
            }
            Tensor x = model.randn(Shape.of(c.batch(), c.config().inChannels(), c.height(), c.width()), DType.F32, gen);
            Tensor target = model.randn(x.shape(), DType.F32, gen);
            Tensor t = backend.fromHost(model, new long[c.batch()], Shape.of(c.batch()));
            Tensor context = model.randn(Shape.of(c.batch(), c.tokens(), c.config().contextDim()), DType.F32, gen);
            Tensor y = model.randn(Shape.of(c.batch(), c.config().admInChannels()), DType.F32, gen);
            long frozen = params.layers().stream().mapToLong(l -> l.weight().numel()).sum();
            long[] activations = new long[1];
            long warmStart = System.nanoTime();
            for (int i = 0; i < warmups || System.nanoTime() - warmStart < WARMUP_MILLIS * 1_000_000L; i++) {
                step(unet, net, model, x, t, context, y, target, activations);
            }
            double[] millis = new double[runs];
            for (int i = 0; i < runs; i++) {
                millis[i] = step(unet, net, model, x, t, context, y, target, activations);
            }
            Arrays.sort(millis);
            return new Result(c, policy, millis[runs / 2], net.parameterCount(), frozen, activations[0]);
        }
    }

    /** One forward + backward; returns milliseconds. */
    private static double step(Unet unet, LoConNetwork net, Scope model, Tensor x, Tensor t, Tensor context, Tensor y,
                               Tensor target, long[] activations) {
        long start = System.nanoTime();
        net.zeroGrad();
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            Tensor loss = f.mseLoss(unet.forward(f, x, t, context, y), target);
            activations[0] = step.liveBytes();
            f.backward(loss);
        }
        model.backend().synchronize();
        return (System.nanoTime() - start) / 1e6;
    }
}
