package tenmin.engine.backend.cpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiConsumer;

import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.OutputMask;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;

/**
 * Throughput of the {@code cpu} backend's matrix-product and convolution kernels, measured through
 * the {@link Backend} calls model code makes (allocation of the result included): warm-up runs, then
 * the median of timed runs. Behind {@code tenmin bench matmul}; not a test.
 */
public final class KernelBenchmark {
    /** One measured case: its FLOP count per run and the median time. */
    public record Result(String name, double flops, double medianMillis) {
        public double gflops() {
            return flops / (medianMillis * 1e6);
        }
    }

    private record Case(String name, double flops, Shape[] inputs, BiConsumer<Scope, Tensor[]> body) {
    }

    /** Minimum warm-up time per case: C2 needs about this long to compile the Vector API kernels. */
    public static final long WARMUP_MILLIS = 2000;

    private KernelBenchmark() {
    }

    /**
     * Runs every case on {@code backend}: untimed runs (at least {@code warmups} and at least
     * {@link #WARMUP_MILLIS}), then {@code runs} timed runs, reporting the median.
     */
    public static List<Result> run(Backend backend, int warmups, int runs, Reporter reporter) {
        List<Case> cases = cases(backend);
        List<Result> results = new ArrayList<>();
        try (Scope root = Scope.root(backend, "bench"); Reporter.Progress progress = reporter.progress("bench", cases.size())) {
            Generator gen = new Generator(1);
            for (Case c : cases) {
                try (Scope inputs = root.child(c.name())) {
                    Tensor[] in = new Tensor[c.inputs().length];
                    for (int i = 0; i < in.length; i++) {
                        in[i] = inputs.randn(c.inputs()[i], DType.F32, gen);
                    }
                    // Until the JIT has compiled the kernels: at least `warmups` runs and WARMUP_MILLIS.
                    long warmStart = System.nanoTime();
                    for (int i = 0; i < warmups || System.nanoTime() - warmStart < WARMUP_MILLIS * 1_000_000L; i++) {
                        time(inputs, c, in);
                    }
                    double[] millis = new double[runs];
                    for (int i = 0; i < runs; i++) {
                        millis[i] = time(inputs, c, in);
                    }
                    Arrays.sort(millis);
                    results.add(new Result(c.name(), c.flops(), millis[runs / 2]));
                }
                progress.advance(1);
            }
        }
        return results;
    }

    private static double time(Scope parent, Case c, Tensor[] in) {
        try (Scope s = parent.child("run")) {
            long start = System.nanoTime();
            c.body().accept(s, in);
            parent.backend().synchronize();
            return (System.nanoTime() - start) / 1e6;
        }
    }

    private static List<Case> cases(Backend be) {
        OutputMask dxDw = new OutputMask(true, true, false);
        return List.of(
                new Case("matmul 1024x1024x1024", 2.0 * 1024 * 1024 * 1024,
                        new Shape[] {Shape.of(1024, 1024), Shape.of(1024, 1024)},
                        (s, t) -> be.matmul(s, t[0], t[1], false, false)),
                new Case("matmul 1024x1024x1024 A^T B (weight-gradient form)", 2.0 * 1024 * 1024 * 1024,
                        new Shape[] {Shape.of(1024, 1024), Shape.of(1024, 1024)},
                        (s, t) -> be.matmul(s, t[0], t[1], true, false)),
                new Case("linear (4096, 640) -> 640 (SDXL attention projection, 64x64 latent)", 2.0 * 4096 * 640 * 640,
                        new Shape[] {Shape.of(4096, 640), Shape.of(640, 640)},
                        (s, t) -> be.linear(s, t[0], t[1], null)),
                new Case("conv3x3 (1, 128, 64, 64) -> 128, forward", 2.0 * 128 * 128 * 9 * 64 * 64,
                        new Shape[] {Shape.of(1, 128, 64, 64), Shape.of(128, 128, 3, 3)},
                        (s, t) -> be.convolution(s, t[0], t[1], null, 1, 1)),
                new Case("conv3x3 (1, 128, 64, 64) -> 128, backward dx + dW", 2 * 2.0 * 128 * 128 * 9 * 64 * 64,
                        new Shape[] {Shape.of(1, 128, 64, 64), Shape.of(128, 128, 3, 3), Shape.of(1, 128, 64, 64)},
                        (s, t) -> be.convolutionBackward(s, t[2], t[0], t[1], 1, 1, dxDw)),
                new Case("conv1x1 (2, 320, 32, 32) -> 320, forward", 2.0 * 2 * 320 * 320 * 32 * 32,
                        new Shape[] {Shape.of(2, 320, 32, 32), Shape.of(320, 320, 1, 1)},
                        (s, t) -> be.convolution(s, t[0], t[1], null, 1, 0)));
    }
}
