package tenmin.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.sample.ModelSource;
import tenmin.train.DemoData;
import tenmin.train.TrainConfig;
import tenmin.train.Trainer;

/**
 * {@code tenmin bench recipe}: the whole recipe of issue 5 as a user runs it — the guide's command line
 * unchanged apart from paths, on a generated dataset of {@code --images} pictures at the guide's
 * resolution and a model of SDXL's architecture with random weights ({@code --random_model}) — and the
 * wall time of each phase: setup, latent caching, training, sampling, saving.
 */
@Command(name = "recipe",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
                "Run the guide's training command line (80 steps, batch 8 x 6 accumulation, 1024x1024, LoCon full,"
                        + " ClybW, a save every step, samples every 10 steps) on a generated dataset and a random"
                        + " SDXL-architecture model, and report the wall time of setup, latent caching, training,"
                        + " sampling and saving. Record results in docs/PERFORMANCE.md.",
                "The dataset (PNG images with captions) is written first and not timed; everything goes under --work"
                        + " (a temporary folder, deleted afterwards, unless given)."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage", "  1  internal failure or a failed run",
                "", "Examples:", "  tenmin bench recipe --images 200                   (the GPU benchmark of issue 5)",
                "  tenmin bench recipe --images 40 --max_train_steps 8 (a shorter run; the loop's share scales)",
                "  tenmin bench recipe --size tiny --images 8 --resolution 128 --device cpu   (the plumbing, on a CPU)"})
public final class RecipeBenchCommand implements Callable<Integer> {
    private final Session session;

    @Option(names = "--images", paramLabel = "N", description = "Images in the dataset (default ${DEFAULT-VALUE};"
            + " the guide's range is 40 to 200).")
    int images = 40;

    @Option(names = "--size", paramLabel = "SIZE", description = "Random model: sdxl (default), small or tiny.")
    String size = "sdxl";

    @Option(names = "--resolution", paramLabel = "PX", description = "Image side and training resolution (default:"
            + " 1024, the guide's; tiny and small: 128).")
    Integer resolution;

    @Option(names = "--device", paramLabel = "DEV", description = "cpu, cuda or cuda:N (default: the first GPU libtorch"
            + " sees, else cpu).")
    String device;

    @Option(names = "--max_train_steps", paramLabel = "N", description = "Optimizer steps (default ${DEFAULT-VALUE},"
            + " the guide's).")
    int steps = 80;

    @Option(names = "--sample_steps", paramLabel = "N", description = "Sampling steps of the sample prompt (default"
            + " ${DEFAULT-VALUE}).")
    int sampleSteps = 28;

    @Option(names = "--sample_every_n_steps", paramLabel = "N", description = "Sample every N steps (default"
            + " ${DEFAULT-VALUE}, the guide's).")
    int sampleEvery = 10;

    @Option(names = "--work", paramLabel = "DIR", description = "Keep the dataset and the outputs in DIR.")
    Path work;

    @Option(names = "--checkpointing", paramLabel = "POLICY", description = "Added to the guide's line: U-Net blocks"
            + " recomputed in the backward (all, none, auto or a block list; default: the guide's"
            + " --gradient_checkpointing, which tenmin reads as auto: what does not fit the card is recomputed).")
    String checkpointing;

    @Mixin
    VerboseMixin verboseMixin;

    public RecipeBenchCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        ModelSource.randomConfig(size); // a bad size is a usage error before anything is written
        if (images < 1 || steps < 1 || sampleSteps < 1 || sampleEvery < 1) {
            throw new InputException("bench recipe: --images, --max_train_steps, --sample_steps and"
                    + " --sample_every_n_steps must be >= 1");
        }
        int px = resolution != null ? resolution : size.equals("sdxl") ? 1024 : 128;
        if (px < 64 || px % 64 != 0) {
            throw new InputException("bench recipe: --resolution " + px + " must be a multiple of 64, at least 64");
        }
        Path dir = work != null ? work : Files.createTempDirectory("tenmin-recipe-bench");
        try {
            return run(dir, px);
        } finally {
            if (work == null) {
                deleteTree(dir);
            }
        }
    }

    private int run(Path dir, int px) throws IOException {
        Reporter reporter = session.reporter(session.verbose() ? Reporter.Level.DEBUG : Reporter.Level.INFO);
        long t0 = System.nanoTime();
        DemoData.Written data = DemoData.writeBenchmark(dir.resolve("dataset"), images, px, px, sampleSteps);
        reporter.log(Reporter.Level.INFO, String.format(Locale.ROOT, "INFO: bench recipe: %d images of %dx%d written in"
                + " %.1f s (not timed below)", images, px, px, (System.nanoTime() - t0) / 1e9));
        List<String> argv = GuideRecipe.arguments(data.dataDir(), dir.resolve("output"), data.prompts(), px);
        argv.removeIf(a -> a.startsWith("--max_train_steps=") || a.startsWith("--min_bucket_reso=")
                || a.startsWith("--sample_every_n_steps="));
        argv.add("--sample_every_n_steps=" + sampleEvery);
        argv.add("--min_bucket_reso=" + Math.max(64, Math.min(256, px / 2))); // the guide's 256 unless the images are smaller
        argv.add("--random_model=" + size);
        argv.add("--max_train_steps=" + steps);
        argv.add("--seed=1");
        if (device != null) {
            argv.add("--device=" + device);
        }
        if (checkpointing != null) {
            argv.add("--checkpointing=" + checkpointing);
        }
        TrainConfig cfg = TrainArgs.parse(argv, reporter, () -> 1L);
        Trainer.Result r;
        String where;
        try (Backend backend = Backends.open(cfg.compute().device(), Runtime.getRuntime().availableProcessors(),
                "--device=", reporter)) {
            where = backend.name() + " backend on " + backend.device();
            r = new Trainer(cfg, new Trainer.Environment(backend, reporter, Clock.systemDefaultZone(), "tenmin bench"))
                    .run();
        }
        if (r.outcome() != Trainer.Outcome.COMPLETED) {
            session.err().println("tenmin bench recipe: the run did not complete: " + r.message());
            return 1;
        }
        Trainer.Timings t = r.timings();
        int microBatches = r.losses().size();
        session.out().printf(Locale.ROOT, "tenmin bench recipe: %s model (random weights), %d images of %dx%d, %d steps"
                        + " (%d micro-batches, --train_batch_size %d), %s, Java %s%n", size, images, px, px, r.steps(), microBatches,
                cfg.loop().trainBatchSize(), where, Runtime.version());
        session.out().println("  " + t.line());
        session.out().println("  " + t.trainingLine());
        session.out().println("  " + t.samplingLine());
        session.out().println("  " + t.savingLine());
        session.out().printf(Locale.ROOT, "  training: %.3f s per micro-batch (optimizer steps included)%n",
                t.training() / Math.max(1, microBatches));
        session.out().println("| device | model | images | steps | setup s | caching s | training s | sampling s |"
                + " saving s | total s | s / micro-batch |");
        session.out().printf(Locale.ROOT, "| %s | %s | %d at %d² | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |%n",
                where, size, images, px, r.steps(), t.setup(), t.caching(), t.training(), t.sampling(), t.saving(),
                t.total(), t.training() / Math.max(1, microBatches));
        return 0;
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        List<Path> paths;
        try (Stream<Path> s = Files.walk(dir)) {
            paths = new ArrayList<>(s.sorted(Comparator.reverseOrder()).toList());
        }
        for (Path p : paths) {
            Files.deleteIfExists(p);
        }
    }
}
