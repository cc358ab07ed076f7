package tenmin.cli;

import java.nio.file.Path;
import java.util.List;

import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Trace;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.sample.LoraSet;
import tenmin.sample.ModelSource;

/** Which model to generate with and where it runs ({@code sample}, {@code atlas}). */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "CKPT", description = "SDXL checkpoint (.safetensors, single file, SAI layout).")
    Path model;

    @Option(names = "--vae", paramLabel = "FILE", description = "A VAE to decode with instead of the checkpoint's:"
            + " a single file in the LDM layout, such as sdxl_vae.safetensors (the images record its name and hash).")
    Path vae;

    @Option(names = "--v-prediction", description = "The checkpoint predicts v (v-prediction SDXL models such as"
            + " NoobAI-XL V-Pred; ComfyUI's ModelSamplingDiscrete v_prediction).")
    boolean vPrediction;

    @Option(names = "--model-config", paramLabel = "JSON", description = "Sizes of a non-SDXL-base checkpoint"
            + " (a fixtures-style config.json with unet, te1, te2 and vae sections); default: SDXL base.")
    Path modelConfig;

    @Option(names = "--random-model", paramLabel = "SIZE", description = "For tests and demos: no checkpoint, seeded"
            + " random weights of size tiny, small or sdxl (the real architecture, for GPU benchmarks). The images show"
            + " noise patterns, not pictures.")
    String randomModel;

    @Option(names = "--model-seed", paramLabel = "N", description = "Seed of the --random-model weights (default ${DEFAULT-VALUE}).")
    long modelSeed = 0;

    @Option(names = "--device", paramLabel = "DEV", description = "Where to run: cuda or cuda:N (libtorch through the"
            + " torch backend: U-Net and text encoders in --precision, fp32 VAE), cpu (the pure-Java engine, fp32), or"
            + " auto (default: the first GPU libtorch finds, else cpu).")
    String device = "auto";

    @Option(names = "--precision", paramLabel = "P", description = "U-Net and text encoders on a GPU: fp16 (default:"
            + " what ComfyUI and A1111 run SDXL in, and the dtype of the usual checkpoints, loaded without rounding) or"
            + " bf16 (what the recipe trains in). The VAE is fp32 and the CPU engine fp32 either way.")
    String precision = "fp16";

    @Option(names = "--threads", paramLabel = "N", description = "CPU worker threads of --device cpu (default: all processors).")
    Integer threads;

    /** The model the options name: exactly one of --model and --random-model. */
    ModelSource source() {
        device();
        mixedPrecision();
        if ((model == null) == (randomModel == null)) {
            throw new InputException("give either --model CKPT or --random-model tiny|small|sdxl");
        }
        if (randomModel != null) {
            if (modelConfig != null || vae != null) {
                throw new InputException((vae != null ? "--vae" : "--model-config")
                        + " goes with --model, not with --random-model");
            }
            return new ModelSource.Random(randomModel, ModelSource.randomConfig(randomModel), modelSeed);
        }
        return ModelSource.Checkpoint.of(model, modelConfig, vae);
    }

    /** The device --device names, null for automatic (checked before any work). */
    Device device() {
        if (device.equalsIgnoreCase("auto")) {
            return null;
        }
        try {
            return Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw new InputException("--device: " + e.getMessage(), e);
        }
    }

    /** The compute backend for --device ({@link Backends#open}); TENMIN_TRACE=1 prints every op. */
    Backend backend(Reporter reporter) {
        if (threads != null && threads < 1) {
            throw new InputException("--threads must be >= 1, got " + threads);
        }
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        return Trace.fromEnvironment(reporter).wrap(Backends.open(device(), n, "--device ", reporter));
    }

    /**
     * The model and LoRAs loaded for generation on the backend --device names; {@link #close} releases all of
     * it (LoRAs, weights, scope, backend), also when one part fails.
     */
    record Loaded(Backend backend, Scope root, SdxlModels models, LoraSet loras) implements AutoCloseable {
        @Override
        public void close() {
            try (Backend b = backend; Scope r = root; SdxlModels m = models; LoraSet l = loras) {
                // closed in reverse order by try-with-resources; nulls are skipped
            }
        }
    }

    /** Starts the backend, loads {@code source} in its dtypes and attaches the prepared LoRAs. */
    Loaded load(ModelSource source, List<LoraSet.Prepared> prepared, Reporter reporter) {
        Backend backend = backend(reporter);
        Scope root = null;
        SdxlModels models = null;
        try {
            root = Scope.root(backend, "process");
            models = source.load(root, dtypes(backend));
            return new Loaded(backend, root, models, LoraSet.attach(prepared, models, root));
        } catch (RuntimeException e) {
            new Loaded(backend, root, models, null).close();
            throw e;
        }
    }

    /** The dtype of each network on {@code backend}: fp32 on the CPU, --precision U-Net/text encoders with an fp32 VAE on a GPU. */
    SdxlDtypes dtypes(Backend backend) {
        return SdxlDtypes.of(backend.device(), mixedPrecision());
    }

    /** --precision as kohya's mixed-precision names it (fp16 or bf16), checked. */
    private String mixedPrecision() {
        return switch (precision) {
            case "fp16", "bf16" -> precision;
            default -> throw new InputException("--precision " + precision + ": expected fp16 or bf16");
        };
    }
}
