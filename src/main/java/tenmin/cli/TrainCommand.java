package tenmin.cli;

import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;
import tenmin.core.Reporter;
import tenmin.sample.PromptFile;
import tenmin.train.TrainConfig;
import tenmin.train.data.BucketPlan;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.data.EpochPlanner;

/**
 * {@code tenmin train}: the reference trainer's command line ({@code sdxl_train_network.py} flags and a
 * TOML {@code --config_file}) parsed and validated into a {@link TrainConfig}; the dataset and the prompt
 * file are read and summarised. The training loop itself is not wired yet: after validation the command
 * says so and exits with 1, having written nothing.
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
    public Integer call() {
        if (args.contains("--help") || args.contains("-h")) {
            printHelp(session.out());
            return 0;
        }
        Reporter reporter = session.reporter(session.verbose() ? Reporter.Level.DEBUG : Reporter.Level.INFO);
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
        if (!cfg.demo()) {
            describeDataset(cfg, reporter);
        }
        if (cfg.sample().prompts() != null) {
            int n = PromptFile.read(cfg.sample().prompts(), cfg.sample().sampler(), reporter).size();
            reporter.log(Reporter.Level.INFO, "INFO: " + n + " sample prompts in " + cfg.sample().prompts());
        }
        session.err().println("tenmin train: error: training loop not yet available (this build parses and validates"
                + " the arguments only; nothing was written)");
        return 1;
    }

    /** Scans the dataset and reports what a run would do with it (images, buckets, steps). */
    private static void describeDataset(TrainConfig cfg, Reporter reporter) {
        TrainConfig.Data d = cfg.data();
        DreamBoothDataset ds = DreamBoothDataset.scan(cfg.paths().trainDataDir(), d.captionExtension(), d.strict(),
                reporter);
        BucketPlan plan = BucketPlan.of(ds, d.width(), d.height(), d.enableBucket(), d.minBucketReso(),
                d.maxBucketReso(), d.bucketResoSteps(), d.bucketNoUpscale());
        EpochPlanner planner = new EpochPlanner(plan.nonEmptyEntries(), cfg.loop().trainBatchSize(),
                cfg.loop().gradAccumSteps(), cfg.loop().seed());
        long steps = cfg.loop().maxTrainEpochs() > 0 ? planner.stepsForEpochs(cfg.loop().maxTrainEpochs())
                : cfg.loop().maxTrainSteps();
        reporter.log(Reporter.Level.INFO, String.format(Locale.ROOT, "INFO: %d images in %d folders, %d with repeats;"
                        + " %d buckets used; %d micro-batches per epoch, %d optimizer steps per epoch, %d epochs for %d steps",
                ds.items().size(), ds.subsets().size(), ds.numTrainImages(), plan.nonEmptyEntries().size(),
                planner.microBatchesPerEpoch(), planner.stepsPerEpoch(), planner.epochsFor(steps), steps));
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
                    case LIST -> " K=V ...";
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
        out.println("  1  internal failure (rerun with --verbose)");
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
