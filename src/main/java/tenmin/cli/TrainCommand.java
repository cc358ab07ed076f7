package tenmin.cli;

import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.time.Clock;

import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;
import tenmin.core.Reporter;
import tenmin.core.ShellWords;
import tenmin.engine.api.Backend;
import tenmin.train.DemoData;
import tenmin.train.Trainer;
import tenmin.train.TrainConfig;

/**
 * {@code tenmin train}: the reference trainer's command line ({@code sdxl_train_network.py} flags and a
 * TOML {@code --config_file}) parsed and validated into a {@link TrainConfig}, the flags away from their
 * defaults printed, then {@link Trainer} runs the recipe (it reads and summarises the dataset and prompts
 * before loading anything big) on the backend {@code --device} names; the summary goes to stdout.
 * With no model and no dataset it runs the built-in demo. Ctrl-C stops after the current micro-batch and
 * saves; the exit code is then 130. {@code --device} picks the backend: the pure-Java CPU backend, or the
 * libtorch backend on a GPU (bf16 frozen weights with {@code --mixed_precision=bf16}).
 */
@Command(name = "train", description = "Train an SDXL LoCon with the 10-minute recipe (kohya sd-scripts flags).",
        helpCommand = false)
public final class TrainCommand implements Callable<Integer> {
    private final Session session;

    @Unmatched
    List<String> args = new ArrayList<>();

    public TrainCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws java.io.IOException {
        if (args.contains("--help") || args.contains("-h")) {
            printHelp(session.out());
            return 0;
        }
        Reporter reporter = session.reporter(session.verbose() ? Reporter.Level.DEBUG : Reporter.Level.INFO);
        if (args.contains("--output_config") || args.contains("--output-config")) {
            java.nio.file.Path written = TrainArgs.writeConfig(args, reporter);
            reporter.log(Reporter.Level.INFO, "INFO: saved config file " + written + " (nothing trained; train with"
                    + " --config_file " + written + ")");
            session.out().println(written);
            return 0;
        }
        SecureRandom seeds = new SecureRandom();
        TrainConfig cfg = TrainArgs.parse(args, reporter, () -> seeds.nextLong() & 0xFFFFFFFFL);
        reporter.log(Reporter.Level.INFO, "INFO: configuration" + (cfg.demo() ? " (built-in demo)" : "")
                + " (flags away from their defaults):");
        for (Map.Entry<String, Object> e : cfg.flags().entrySet()) {
            if (!java.util.Objects.equals(e.getValue(), TrainFlags.get(e.getKey()).def())) {
                reporter.log(Reporter.Level.INFO, "INFO:   " + e.getKey() + " = " + e.getValue());
            }
        }
        if (!cfg.loop().seedGiven()) {
            reporter.log(Reporter.Level.INFO, "INFO: no --seed given; using seed " + cfg.loop().seed());
        }
        try (Backend backend = openBackend(cfg.compute(), reporter)) {
            Trainer trainer = new Trainer(cfg, new Trainer.Environment(backend, reporter, Clock.systemDefaultZone(),
                    version()));
            Trainer.Result result = runWithCtrlC(trainer);
            return report(cfg, result);
        }
    }

    /**
     * The backend for {@code --device}: {@code cpu} is the pure-Java backend; {@code cuda[:N]} the libtorch
     * backend on that GPU; automatic picks the first GPU when libtorch is found and sees one, else the CPU.
     */
    private static Backend openBackend(TrainConfig.Compute compute, Reporter reporter) {
        int threads = compute.cpuThreads() > 0 ? compute.cpuThreads() : Runtime.getRuntime().availableProcessors();
        return Backends.open(compute.device(), threads, "--device=", reporter);
    }

    /**
     * Runs the trainer with a Ctrl-C hook: the first interrupt asks the loop to stop after the current
     * micro-batch and save; the JVM waits for that before exiting.
     */
    private Trainer.Result runWithCtrlC(Trainer trainer) throws java.io.IOException {
        CountDownLatch finished = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            trainer.requestStop();
            session.err().println();
            session.err().println("tenmin train: interrupted; finishing this micro-batch and saving (kill -9 aborts"
                    + " without saving)");
            session.err().flush();
            try {
                finished.await(30, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "tenmin-train-ctrl-c");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return trainer.run();
        } finally {
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the JVM is exiting because of Ctrl-C: the hook is running and returns now
            }
        }
    }

    /** Prints where everything went and how the loss moved (stdout); the exit code of the outcome. */
    private int report(TrainConfig cfg, Trainer.Result result) {
        PrintStream out = session.out();
        if (result.outcome() == Trainer.Outcome.DIVERGED) {
            session.err().println("tenmin train: error: " + result.message());
            return 1;
        }
        out.println("tenmin train: " + result.message());
        List<Float> losses = result.losses();
        if (!losses.isEmpty()) {
            int k = Math.max(1, Math.min(8, losses.size() / 4));
            out.println(String.format(Locale.ROOT, "  loss: mean of the first %d micro-batches %.4f, of the last %d %.4f"
                            + " (%d micro-batches; noisy by nature: each draws its own timesteps)", k,
                    mean(losses.subList(0, k)), k, mean(losses.subList(losses.size() - k, losses.size())), losses.size()));
        }
        out.println("  time: " + result.timings().line());
        for (Map.Entry<String, java.nio.file.Path> e : result.outputs().entrySet()) {
            out.println("  " + e.getKey() + ": " + e.getValue());
        }
        if (cfg.log().tensorboard()) {
            out.println("  view the logs: tensorboard --logdir " + cfg.log().loggingDir());
        }
        if (cfg.demo()) {
            out.println("  (a tiny random model: the run demonstrates the mechanics; train your own with"
                    + " --pretrained_model_name_or_path and --train_data_dir)");
            java.nio.file.Path lora = result.outputs().get("last LoRA");
            if (lora != null) {
                out.println("  next, the guide's other steps on the demo's LoRA:");
                for (List<String> step : DemoData.nextSteps(lora, cfg.paths().outputDir())) {
                    out.println("    tenmin " + ShellWords.join(step));
                }
            }
        }
        return result.outcome() == Trainer.Outcome.STOPPED ? 130 : 0;
    }

    private static double mean(List<Float> xs) {
        double s = 0;
        for (float x : xs) {
            s += x;
        }
        return s / xs.size();
    }

    private static String version() {
        String v = TrainCommand.class.getPackage().getImplementationVersion();
        return "tenmin " + (v == null ? "dev" : v);
    }

    private static void printHelp(PrintStream out) {
        out.println("Usage: tenmin train [--flag[=value] ...] [--config_file FILE.toml]");
        out.println();
        out.println("Trains an SDXL LoCon with the reference trainer's flags (kohya sd-scripts sdxl_train_network.py).");
        out.println("With neither --pretrained_model_name_or_path nor --train_data_dir it runs the built-in demo.");
        out.println("A --config_file is TOML whose keys are these flag names ([section] tables are flattened);");
        out.println("values on the command line win over the file.");
        out.println();
        out.println("Flags (default in brackets):");
        for (TrainFlags.Effect effect : TrainFlags.Effect.values()) {
            out.println(switch (effect) {
                case USED -> "";
                case NO_EFFECT -> "\nAccepted for compatibility, no effect here (a warning says so):";
                case NEUTRAL_ONLY -> "\nNot implemented; accepted only at the neutral value shown:";
            });
            for (TrainFlags.Flag f : TrainFlags.ALL) {
                if (f.effect() != effect) {
                    continue;
                }
                String value = switch (f.kind()) {
                    case BOOL -> "";
                    case LIST -> f.name().equals("base_weights") ? " FILE ..."
                            : f.name().equals("base_weights_multiplier") ? " X ..." : " K=V ...";
                    case INT -> "=N";
                    case FLOAT -> "=X";
                    case STRING -> "=S";
                };
                String def = f.def() == null || f.kind() == TrainFlags.Kind.BOOL || f.def() instanceof List ? ""
                        : " [" + f.def() + "]";
                out.println(String.format(Locale.ROOT, "  --%-36s %s%s", f.name() + value, f.help(), def));
            }
        }
        out.println();
        out.println("Exit codes:");
        out.println("  0  success");
        out.println("  2  bad usage or bad input (unknown flag, bad value, contradictory options, missing file)");
        out.println("  1  the loss or gradients became NaN/infinite (the last good save is kept), or internal failure");
        out.println("  130  stopped with Ctrl-C after saving the LoRA and a resume state");
        out.println();
        out.println("Example (the built-in demo: a tiny random model, generated data, about a minute on a CPU):");
        out.println("  tenmin train");
        out.println();
        out.println("Example (the guide's recipe):");
        out.println("  tenmin train --pretrained_model_name_or_path=model.safetensors --train_data_dir=data \\");
        out.println("    --output_dir=out --resolution=1024,1024 --enable_bucket --bucket_reso_steps=32 \\");
        out.println("    --network_module=lycoris.kohya --network_dim=8 --network_alpha=4 \\");
        out.println("    --network_args preset=full conv_dim=256 conv_alpha=4 algo=locon \\");
        out.println("    --optimizer_type=ClybW --lr_scheduler=cosine --lr_scheduler_args=num_cycles=0.375 \\");
        out.println("    --unet_lr=0.0003 --text_encoder_lr=0.0001 --train_batch_size=8 \\");
        out.println("    --gradient_accumulation_steps=6 --max_train_steps=80 --save_precision=fp16");
    }
}
