package tenmin.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.OpTimes;
import tenmin.engine.api.Trace;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.LibTorch;
import tenmin.engine.backend.torch.LibTorchLocator;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchException;
import tenmin.lora.LoConPreset;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.sdxl.CheckpointPolicy;
import tenmin.models.sdxl.Unet;
import tenmin.train.AutoCheckpointing;
import tenmin.train.TrainBenchmark;

/**
 * The options of {@code tenmin bench train} and the run: plan on shapes, then measure on the device.
 */
final class BenchTrainOptions {
    /** The device of {@code bench --device} (null: the first GPU libtorch sees, else cpu). */
    String device;

    @Option(names = "--backend", paramLabel = "NAME", description = "train: cpu (pure Java) or torch (libtorch; the"
            + " default on a GPU). --device cpu --backend torch runs the CPU libtorch.")
    String backend;

    @Option(names = "--config", paramLabel = "MODEL", defaultValue = "sdxl", description = "train: sdxl, tiny (the demo's"
            + " 32-channel model) or a fixtures-style config.json (default: ${DEFAULT-VALUE}).")
    String config;

    @Option(names = "--batch", paramLabel = "N", description = "train: images per micro-batch (default: 8; tiny: 2).")
    Integer batch;

    @Option(names = "--latent", paramLabel = "H[xW]", description = "train: latent size, image size / 8 (default: 128,"
            + " i.e. 1024x1024 images; tiny: 16).")
    String latent;

    @Option(names = "--checkpointing", paramLabel = "POLICY", defaultValue = "all", description = "train: U-Net blocks"
            + " recomputed in the backward: all, none, or e.g. input_blocks.1-8,middle_block (default: ${DEFAULT-VALUE}).")
    String checkpointing;

    @Option(names = "--te", description = "train: also train LoCon modules on both text encoders (their backward runs).")
    boolean trainTe;

    @Option(names = "--accumulation", paramLabel = "N", defaultValue = "6", description = "train: micro-batches per"
            + " optimizer step; the optimizer step (on the device, as the trainer runs it) is timed and shared over them"
            + " (0: none; default: ${DEFAULT-VALUE}).")
    int accumulation;

    @Option(names = "--precision", paramLabel = "P", description = "train: bf16, fp16 or no (fp32) frozen weights and"
            + " activations (default: bf16 on a GPU, no on the CPU).")
    String precision;

    @Option(names = "--fp8-base", description = "train: the frozen U-Net and text encoders stored as float8 e4m3fn and"
            + " cast at each use (train's --fp8_base).")
    boolean fp8Base;

    @Option(names = "--attention", paramLabel = "KERNEL", defaultValue = "auto", description = "train, CUDA: auto,"
            + " cudnn, flash or efficient (default: ${DEFAULT-VALUE}).")
    String attention;

    @Option(names = "--math", paramLabel = "MODE", defaultValue = "tenmin", description = "train, CUDA: tenmin (what"
            + " tenmin train uses: TF32 for fp32 work, bf16 products accumulated in fp32), exact (no TF32 either) or"
            + " reference (PyTorch's defaults with TF32, as kohya: bf16 split-K reductions in bf16; default:"
            + " ${DEFAULT-VALUE}).")
    String math;

    @Option(names = "--plan", description = "train: only the plan (memory, ops, FLOPs from a shape-only run); no device.")
    boolean planOnly;

    @Option(names = "--op-times", description = "train, vae: time one more micro-batch (train: forward and backward)"
            + " or one more encode and decode (vae) op by op (device time from CUDA events between ops on a GPU, the"
            + " wall clock on the CPU; and the host's time to issue each) and print the ops that took the most.")
    boolean opTimes;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "train: weights and inputs (default:"
            + " ${DEFAULT-VALUE}).")
    long seed;

    /**
     * Runs {@code bench train}; {@code threads} is the cpu backend's pool size, {@code cudaProfile} marks the last
     * timed micro-batch for a CUDA profiler.
     */
    int run(Session session, int warmup, int runs, int threads, boolean cudaProfile) {
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        String modelName = config;
        SdxlConfig model = switch (config) {
            case "sdxl" -> SdxlConfig.sdxl();
            case "tiny" -> SdxlConfig.tiny();
            default -> {
                Path file = Path.of(config);
                if (!Files.isRegularFile(file)) {
                    throw new InputException("--config " + config + ": not sdxl, tiny or a config.json file");
                }
                modelName = file.getFileName().toString();
                yield SdxlConfig.fromConfigFile(file);
            }
        };
        boolean tiny = config.equals("tiny");
        int n = batch != null ? batch : tiny ? 2 : 8;
        int[] hw = latentSize(latent != null ? latent : tiny ? "16" : "128");
        boolean auto = CheckpointPolicy.isAuto(checkpointing);
        if (auto && planOnly) {
            throw new InputException("--checkpointing auto chooses by the GPU's free memory; with --plan name a policy"
                    + " (all, none or blocks)");
        }
        CheckpointPolicy policy;
        try {
            policy = auto ? CheckpointPolicy.all() : CheckpointPolicy.parse(checkpointing);
            Unet.meta(model.unet()).setCheckpointing(policy);   // names only blocks this U-Net has
        } catch (IllegalArgumentException e) {
            throw new InputException("--checkpointing: " + e.getMessage());
        }
        if (accumulation < 0 || n < 1) {
            throw new InputException("--accumulation must be >= 0 and --batch >= 1");
        }
        Device dev = device == null ? null : parseDevice(device);
        boolean torch = backend == null ? dev == null || dev.kind() == Device.Kind.CUDA : switch (backend) {
            case "torch" -> true;
            case "cpu" -> false;
            default -> throw new InputException("--backend " + backend + ": expected cpu or torch");
        };
        if (!torch && dev != null && dev.kind() == Device.Kind.CUDA) {
            throw new InputException("--backend cpu runs on the host; it cannot use --device " + dev);
        }
        TorchBackend.AttentionKernel kernel = enumOption("--attention", attention, TorchBackend.AttentionKernel.class);
        LibTorch.MathMode mathMode = switch (math) {
            case "tenmin" -> LibTorch.MathMode.COMMANDS;
            case "exact" -> LibTorch.MathMode.EXACT;
            case "reference" -> LibTorch.MathMode.REFERENCE;
            default -> throw new InputException("--math " + math + ": expected tenmin, exact or reference");
        };

        LibTorch lib = null;
        if (torch && !planOnly) {
            try {
                lib = LibTorch.locateAndLoad();
            } catch (LibTorchLocator.NotFoundException | TorchException e) {
                throw new InputException("bench train: no usable libtorch (" + Main.oneLine(e.getMessage())
                        + "); see docs/ENGINE.md, or use --backend cpu");
            }
        }
        if (dev == null) {   // a plan alone is for the recipe's GPU
            dev = planOnly || (lib != null && lib.cudaDeviceCount() > 0) ? Device.cuda(0) : Device.CPU;
        }
        if (!planOnly && dev.kind() == Device.Kind.CPU && config.equals("sdxl")) {
            throw new InputException("bench train: the full-size SDXL micro-batch needs a GPU (found none"
                    + (lib != null ? ": " + lib.cudaProblem() : "") + "); use --plan for its memory and FLOPs,"
                    + " or --config tiny on the CPU");
        }
        SdxlDtypes dtypes = dtypes(dev);
        TrainBenchmark.Setup setup;
        try {
            setup = new TrainBenchmark.Setup(modelName, model, dtypes, n, hw[0], hw[1], policy, trainTe,
                    TrainBenchmark.Setup.RECIPE_RANKS, LoConPreset.TextEncoderModules.FULL, accumulation, seed);
        } catch (IllegalArgumentException e) {
            throw new InputException("bench train: " + e.getMessage());
        }
        TrainBenchmark.Plan plan = null;
        if (!auto) {
            session.out().println("tenmin bench train: " + setup.describe());
            plan = TrainBenchmark.plan(setup, dev);
            plan.lines().forEach(session.out()::println);
            session.out().flush();
        }
        if (planOnly) {
            return 0;
        }
        String where;
        Backend be;
        Supplier<long[]> memory = null;
        if (torch) {
            String switches = dev.kind() == Device.Kind.CUDA ? lib.applyCommandSwitches(mathMode)
                    : lib.setMathMode(mathMode);
            TorchBackend tb;
            try {
                tb = new TorchBackend(lib, dev, kernel);
            } catch (IllegalArgumentException e) {
                throw new InputException("--device " + dev + ": " + e.getMessage());
            }
            be = tb;
            memory = tb::deviceMemoryInfo;
            long[] mem = tb.deviceMemoryInfo();
            if (auto) {
                plan = autoPlan(session, setup, dev, mem);
            }
            long headroom = 1L << 30;   // the CUDA context's later growth, allocator rounding, cuDNN workspaces
            if (mem != null && plan.peakBytes() + headroom > mem[0]) {
                tb.close();
                throw new InputException(String.format(Locale.ROOT, "bench train: the plan needs %s of tensor storage and"
                        + " %s is free on %s; use --checkpointing all (or fewer blocks unchecked) or a smaller --batch",
                        TrainBenchmark.gib(plan.peakBytes()), TrainBenchmark.gib(mem[0]), dev));
            }
            where = dev + " (torch backend, " + lib.describe() + "; math: " + switches + "; attention " + kernel
                    + ")";
        } else {
            be = new CpuBackend(threads);
            where = "cpu (cpu backend, " + threads + " threads)";
            if (auto) {
                plan = autoPlan(session, setup, dev, null);
            }
        }
        session.out().println("device: " + where + ", Java " + Runtime.version());
        try (Backend b = be; OpTimes times = opTimes ? new OpTimes(b) : null) {
            Backend traced = Trace.fromEnvironment(reporter).wrap(b);   // TENMIN_TRACE=1 lists every op
            if (times != null) {
                traced = times.wrap(traced);
            }
            TrainBenchmark.Measurement m = TrainBenchmark.measure(traced, plan, warmup, runs, memory, cudaProfile,
                    times, reporter);
            m.lines().forEach(session.out()::println);
            session.out().println("| device | model, batch, latents | checkpointing | text encoders | ms / micro-batch"
                    + " | images/s | ms in the recipe (+ optimizer / " + accumulation + ") | utilisation | peak memory |");
            session.out().println(m.tableRow(dev.kind() == Device.Kind.CUDA ? dev.toString() : "cpu " + (torch ? "libtorch"
                    : "backend")));
        }
        return 0;
    }

    /**
     * {@code --checkpointing auto}: the least recomputation whose plan fits {@code memory} (free, total), chosen as
     * {@code tenmin train --checkpointing auto} chooses it ({@link AutoCheckpointing#fit}); all without a memory
     * figure. Prints the chosen setup, its plan and the line that explains the choice.
     */
    private static TrainBenchmark.Plan autoPlan(Session session, TrainBenchmark.Setup base, Device dev, long[] memory) {
        TrainBenchmark.Plan plan;
        String why;
        if (memory == null) {
            plan = TrainBenchmark.plan(base.withCheckpointing(CheckpointPolicy.all()), dev);
            why = "gradient checkpointing auto: no device memory to fit, so all";
        } else {
            AutoCheckpointing.Choice c = AutoCheckpointing.fit(base.model().unet(), dev, memory,
                    policy -> TrainBenchmark.plan(base.withCheckpointing(policy), dev));
            plan = c.plan();
            why = c.why();
        }
        session.out().println("tenmin bench train: " + plan.setup().describe());
        plan.lines().forEach(session.out()::println);
        session.out().println(why);
        session.out().flush();
        return plan;
    }

    private SdxlDtypes dtypes(Device dev) {
        String p = precision != null ? precision : dev.kind() == Device.Kind.CUDA ? "bf16" : "no";
        DType frozen = switch (p) {
            case "bf16" -> DType.BF16;
            case "fp16" -> DType.F16;
            case "no", "fp32" -> DType.F32;
            default -> throw new InputException("--precision " + p + ": expected bf16, fp16 or no");
        };
        SdxlDtypes dtypes = new SdxlDtypes(frozen, frozen, DType.F32);
        return fp8Base ? dtypes.withFp8Base(true) : dtypes;
    }

    private static Device parseDevice(String text) {
        try {
            return Device.parse(text);
        } catch (IllegalArgumentException e) {
            throw new InputException("--device: " + e.getMessage());
        }
    }

    /** {@code 128} or {@code 96x160} (latent rows x columns). */
    static int[] latentSize(String text) {
        String[] parts = text.toLowerCase(Locale.ROOT).split("x");
        try {
            int h = Integer.parseInt(parts[0].trim());
            int w = parts.length == 1 ? h : Integer.parseInt(parts[1].trim());
            if (parts.length > 2 || h < 1 || w < 1) {
                throw new NumberFormatException();
            }
            return new int[] {h, w};
        } catch (NumberFormatException e) {
            throw new InputException("--latent " + text + ": expected H or HxW in latent cells (image pixels / 8)");
        }
    }

    private static <E extends Enum<E>> E enumOption(String option, String value, Class<E> type) {
        try {
            return Enum.valueOf(type, value.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new InputException(option + " " + value + ": expected one of " + List.of(type.getEnumConstants())
                    .toString().toLowerCase(Locale.ROOT));
        }
    }
}
