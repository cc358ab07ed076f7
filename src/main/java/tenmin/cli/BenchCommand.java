package tenmin.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Trace;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.cpu.KernelBenchmark;
import tenmin.lora.LoConStepBenchmark;
import tenmin.sample.ModelSource;
import tenmin.sample.SampleBenchmark;

/** {@code tenmin bench}: measures the engine's kernels (a benchmark, not a test). */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measures the engine: GFLOP/s of the cpu backend's matrix products and convolutions (matmul),"
                + " the time of one U-Net LoCon training step on small random models on the cpu backend (step),"
                + " seconds per image of 'tenmin sample' (sample), or the trainer's micro-batch at full SDXL size on a"
                + " GPU (train: the recipe's LoCon, batch 8 at 1024x1024, checkpointing; memory, FLOPs and utilisation"
                + " against the card's measured matrix rate); warm-up, then the median of timed runs."
                + " Record results in docs/PERFORMANCE.md.",
                "sample: seconds per image (Euler a, CFG) on a random model of --size, without a LoRA and with the"
                        + " recipe's LoCon, on --device (cpu, or cuda through libtorch).",
                "vae: milliseconds per fp32 VAE encode (the latent caching's, per image and orientation) and decode (the"
                        + " sampler's) of one --width x --height image on --device, with a random VAE of --size.",
                "make-inputs DIR: the full-size checkpoint and LoCon of the LoRA-tool benchmarks (resize, chop).",
                "recipe: the guide's whole training command line on generated images and a random SDXL-sized model;"
                        + " wall time of setup, caching, training, sampling and saving (tenmin bench recipe --help)."},
        subcommands = {MakeInputsCommand.class, RecipeBenchCommand.class},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage (unknown target, bad option)", "  1  internal failure",
                "", "Examples:", "  tenmin bench matmul --runs 9", "  tenmin bench step",
                "  tenmin bench sample --device cuda --size sdxl --width 1024 --height 1024 --steps 30 --runs 3 --warmup 1",
                "  tenmin bench vae --device cuda --size sdxl --width 1024 --height 1024 --runs 5 --warmup 2",
                "  tenmin bench train --device cuda --te              (the recipe on the first GPU)",
                "  tenmin bench train --plan                          (memory, ops and FLOPs only; no GPU needed)",
                "  tenmin bench train --config tiny --device cpu      (seconds, on the pure-Java backend)",
                "  tenmin bench make-inputs bench/",
                "  tenmin bench recipe --images 200"})
public final class BenchCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", arity = "0..1", paramLabel = "TARGET", description = "What to measure: matmul (matrix"
            + " products and convolutions), step (U-Net LoCon training step, cpu backend), sample (text-to-image),"
            + " vae (encode and decode) or train (the trainer's micro-batch).")
    String target;

    @Option(names = "--device", paramLabel = "DEV", description = "cpu, cuda or cuda:N (sample, vae: default cpu;"
            + " train: default the first GPU libtorch sees, else cpu).")
    String device;

    @Option(names = "--size", paramLabel = "SIZE", description = "sample, vae: random model size tiny, small or sdxl"
            + " (default ${DEFAULT-VALUE}).")
    String size = "tiny";

    @Option(names = {"-W", "--width"}, paramLabel = "PX", description = "sample, vae: image width (default"
            + " ${DEFAULT-VALUE}).")
    int width = 256;

    @Option(names = {"-H", "--height"}, paramLabel = "PX", description = "sample, vae: image height (default"
            + " ${DEFAULT-VALUE}).")
    int height = 256;

    @Option(names = "--steps", paramLabel = "N", description = "sample: sampling steps (default ${DEFAULT-VALUE}).")
    int steps = 30;

    @Option(names = "--cfg", paramLabel = "SCALE", description = "sample: CFG scale (default ${DEFAULT-VALUE}).")
    double cfg = 7.0;

    @Option(names = "--no-lora", description = "sample: skip the case with the recipe LoCon.")
    boolean noLora;

    @Option(names = "--cuda-profile", description = "train, sample, vae on CUDA: make the last timed micro-batch (train),"
            + " the first case's last sampling loop (sample) or the last encode (vae) the one region a CUDA profiler started with"
            + " --profile-from-start off records (cudaProfilerStart/Stop), e.g. ncu's kernel times.")
    boolean cudaProfile;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all processors).")
    Integer threads;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "7", description = "Timed runs per case (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "5",
            description = "Untimed runs per case first, for at least a minimum time (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Mixin
    BenchTrainOptions train;

    @Mixin
    VerboseMixin verboseMixin;

    public BenchCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        if (target == null) {
            throw new InputException("bench: give a target (matmul, step, sample, vae or train) or the subcommand"
                    + " make-inputs");
        }
        if (!List.of("matmul", "step", "sample", "vae", "train").contains(target)) {
            throw new InputException("bench: unknown target '" + target + "' (expected: matmul, step, sample, vae or"
                    + " train)");
        }
        if (runs < 1 || warmup < 0 || (threads != null && threads < 1)) {
            throw new InputException("bench: --runs must be >= 1, --warmup >= 0 and --threads >= 1");
        }
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        if (target.equals("train")) {
            train.device = device;
            return train.run(session, warmup, runs, n, cudaProfile);
        }
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        if (target.equals("sample")) {
            return sample(n, reporter);
        }
        if (target.equals("vae")) {
            return vae(n, reporter);
        }
        try (CpuBackend cpu = new CpuBackend(n)) {
            Backend backend = Trace.fromEnvironment(reporter).wrap(cpu);   // TENMIN_TRACE=1 prints every op
            if (target.equals("step")) {
                printSteps(LoConStepBenchmark.run(backend, LoConStepBenchmark.cases(), warmup, runs, reporter), n);
                return 0;
            }
            List<KernelBenchmark.Result> results = KernelBenchmark.run(backend, warmup, runs, reporter);
            session.out().printf(Locale.ROOT, "cpu backend, %d threads, Java %s, median of %d runs after >= %d warm-up runs"
                    + " and >= %d ms%n", n, Runtime.version(), runs, warmup, KernelBenchmark.WARMUP_MILLIS);
            session.out().printf(Locale.ROOT, "%-70s %10s %10s%n", "case", "ms", "GFLOP/s");
            for (KernelBenchmark.Result r : results) {
                session.out().printf(Locale.ROOT, "%-70s %10.2f %10.1f%n", r.name(), r.medianMillis(), r.gflops());
            }
        }
        return 0;
    }

    /** Where sample and vae run: --device (default cpu) with {@code threads} CPU workers. */
    private ModelOptions where(int threads) {
        ModelOptions where = new ModelOptions();
        where.device = device == null ? "cpu" : device;
        where.threads = threads;
        return where;
    }

    private int sample(int threads, Reporter reporter) {
        ModelOptions where = where(threads);
        SampleBenchmark.Config c = new SampleBenchmark.Config(size, width, height, steps, cfg, warmup, runs, !noLora,
                cudaProfile);
        ModelSource.randomConfig(size); // checks the name before anything starts
        try (Backend backend = where.backend(reporter)) {
            List<SampleBenchmark.Result> results;
            try {
                results = SampleBenchmark.run(backend, c, reporter);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            session.out().printf(Locale.ROOT, "%s backend on %s, Java %s; %s model, %dx%d, Euler a %d steps, CFG %s;"
                    + " median of %d images after %d warm-up%n", backend.name(), backend.device(), Runtime.version(), size,
                    width, height, steps, cfg, runs, warmup);
            for (SampleBenchmark.Result r : results) {
                session.out().printf(Locale.ROOT, "%s: %.3f s/image (sampling %.3f s = %.1f ms per U-Net call, VAE decode"
                        + " %.3f s); host per U-Net call: %.1f ms issuing, then %.1f ms waiting for the device%n",
                        r.label(), r.image(), r.sampling(), 1000 * r.perUnetCall(), r.decode(), 1000 * r.issuePerCall(),
                        1000 * r.waitPerCall());
            }
        }
        return 0;
    }

    private int vae(int threads, Reporter reporter) {
        ModelOptions where = where(threads);
        tenmin.models.SdxlConfig config = ModelSource.randomConfig(size);
        try {
            tenmin.models.vae.VaeBenchmark.checkSize(config.vae(), width, height);
        } catch (IllegalArgumentException e) {
            throw new InputException(e.getMessage());
        }
        tenmin.models.vae.VaeBenchmark.Config c = new tenmin.models.vae.VaeBenchmark.Config(config.vae(), width, height,
                warmup, runs, cudaProfile);
        try (Backend backend = where.backend(reporter);
             tenmin.engine.api.OpTimes times = train.opTimes ? new tenmin.engine.api.OpTimes(backend) : null) {
            List<String> opTimeLines = new java.util.ArrayList<>();
            List<tenmin.models.vae.VaeBenchmark.Result> results = tenmin.models.vae.VaeBenchmark.run(
                    times == null ? backend : times.wrap(backend), c, times, opTimeLines::add);
            session.out().printf(Locale.ROOT, "%s backend on %s, Java %s; %s VAE (fp32, random weights), %dx%d; median of"
                    + " %d after %d warm-up%n", backend.name(), backend.device(), Runtime.version(), size, width, height,
                    runs, warmup);
            results.forEach(r -> session.out().println(r.line()));
            opTimeLines.forEach(session.out()::println);
        }
        return 0;
    }

    private void printSteps(List<LoConStepBenchmark.Result> results, int threads) {
        session.out().printf(Locale.ROOT, "cpu backend, %d threads, Java %s, fp32, median of %d steps after >= %d warm-up"
                + " steps and >= %d ms; a step = forward, MSE loss, backward into the LoCon (no optimizer)%n", threads,
                Runtime.version(), runs, warmup, LoConStepBenchmark.WARMUP_MILLIS);
        for (LoConStepBenchmark.Result r : results) {
            session.out().printf(Locale.ROOT, "%s: checkpointing %s: %.1f ms/step, %.2f images/s, activations %.1f MiB"
                    + " (U-Net %,d frozen weights, LoCon %,d trainable)%n", r.benchCase().name(), r.checkpointing(),
                    r.medianMillis(), r.imagesPerSecond(), r.activationBytes() / 1048576.0, r.frozenValues(),
                    r.trainableValues());
        }
    }
}
