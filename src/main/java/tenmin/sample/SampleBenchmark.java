package tenmin.sample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import tenmin.core.Reporter;
import tenmin.core.Stats;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.formats.StDType;
import tenmin.lora.BlockWeights;
import tenmin.lora.LoConModule;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;

/**
 * Seconds per image of the sampling pipeline on a backend (a benchmark, not a test): a model of a named size
 * with seeded random weights ({@link ModelSource#randomConfig}), one prompt, CFG, rendered after warm-up
 * images, without a LoRA and with the recipe's LoCon (LyCORIS preset full on the U-Net, conv_dim 256 /
 * network_dim 8, plus text-encoder MLPs; random non-zero weights). Reports the median of the whole image and
 * of its stages ({@link SdxlPipeline.Timings}).
 */
public final class SampleBenchmark {
    private SampleBenchmark() {
    }

    /**
     * What to measure.
     *
     * @param size    tiny, small or sdxl
     * @param width   pixels
     * @param height  pixels
     * @param steps   sampling steps (Euler a)
     * @param cfg     guidance scale (two U-Net samples per image unless 1)
     * @param warmup  untimed images first
     * @param runs    timed images (the median is reported)
     * @param lora    also measure with the recipe LoCon
     * @param cudaProfile the first case's last timed sampling loop is the region of {@code ncu --profile-from-start off}
     */
    public record Config(String size, int width, int height, int steps, double cfg, int warmup, int runs, boolean lora,
                         boolean cudaProfile) {
    }

    /**
     * Medians over the timed images, in seconds.
     *
     * @param label          "no LoRA" or "recipe LoCon (N modules, M parameters)"
     * @param image          whole image (text, sampling, decoding)
     * @param sampling       the sampling loop (every U-Net call)
     * @param perUnetCall    sampling / steps
     * @param issuePerCall   host seconds to issue one U-Net call (median image)
     * @param waitPerCall    host seconds waiting for one U-Net call's result after issuing it (near 0: host-bound)
     * @param decode         VAE decoding
     * @param modelSeconds   building the random model (first case only, else 0)
     * @param weightBytes    frozen weights on the device
     */
    public record Result(String label, double image, double sampling, double perUnetCall, double issuePerCall,
                         double waitPerCall, double decode, double modelSeconds, long weightBytes) {
    }

    /** Runs the benchmark on {@code backend} (the LoRA case writes a temporary file). */
    public static List<Result> run(Backend backend, Config c, Reporter reporter) throws IOException {
        SdxlConfig config = ModelSource.randomConfig(c.size());
        SdxlPipeline.checkSize(config, c.width(), c.height(), "--");
        SdxlDtypes dtypes = SdxlDtypes.of(backend.device(), "bf16");
        List<Result> results = new ArrayList<>();
        try (Scope root = Scope.root(backend, "bench sample")) {
            long t0 = System.nanoTime();
            try (SdxlModels models = SdxlModels.random(config, root, dtypes, 0)) {
                backend.synchronize();
                double modelSeconds = (System.nanoTime() - t0) / 1e9;
                reporter.log(Reporter.Level.INFO, String.format(java.util.Locale.ROOT, "bench sample: %s model (%s) built in"
                        + " %.1f s, %.2f GB of weights", c.size(), dtypes, modelSeconds, models.weightBytes() / 1e9));
                SdxlPipeline.Settings settings = new SdxlPipeline.Settings(
                        "a photo of a red fox in the snow, detailed fur, (sharp focus:1.2)", "blurry, low quality",
                        c.width(), c.height(), Sampler.Settings.of(SamplerKind.EULER_A, c.steps()), c.cfg());
                results.add(measure(new SdxlPipeline(models, LoraSet.empty(), PromptEncoder.Options.A1111, reporter),
                        settings, c, "no LoRA", modelSeconds, models.weightBytes(), root, c.cudaProfile()));
                if (c.lora()) {
                    Path file = Files.createTempFile("tenmin-bench-locon", ".safetensors");
                    try {
                        String label;
                        try (Scope build = root.child("bench lora file")) {
                            LoConNetwork net = recipeLocon(models, build);
                            label = "recipe LoCon (" + net.modules().size() + " modules, " + net.parameterCount()
                                    + " parameters, fp16 file)";
                            net.save(file, StDType.F16, Map.of());
                            net.detach();
                        }
                        // the path of tenmin sample --lora: checked, loaded, converted to the compute dtype
                        List<LoraSet.Prepared> prepared = LoraSet.prepare(List.of(new LoraSpec(file, 1.0, null)), config,
                                BlockWeights.Options.defaults(), reporter);
                        try (LoraSet set = LoraSet.attach(prepared, models, root)) {
                            results.add(measure(new SdxlPipeline(models, set, PromptEncoder.Options.A1111, reporter),
                                    settings, c, label, 0, models.weightBytes(), root, false));
                            // tenmin sample's form on a GPU: merged into the weights once (the models keep it)
                            set.merge();
                            results.add(measure(new SdxlPipeline(models, set, PromptEncoder.Options.A1111, reporter),
                                    settings, c, label + ", merged into the weights", 0, models.weightBytes(), root, false));
                        }
                    } finally {
                        Files.deleteIfExists(file);
                    }
                }
            }
        }
        return results;
    }

    /**
     * The recipe's LoCon on {@code models} (U-Net preset full at ranks 8/256, text-encoder MLPs at rank 8), with
     * random non-zero up weights as after training, attached to the layers.
     */
    static LoConNetwork recipeLocon(SdxlModels models, Scope scope) {
        List<LoConTarget> targets = new ArrayList<>();
        LoConRanks te = LoConRanks.linear(8, 4.0);
        targets.addAll(LoConPreset.textEncoder(LoConPreset.TE1, models.textEncoders().te1().adaptableLayers(),
                LoConPreset.TextEncoderModules.MLP_ONLY, te));
        targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, models.textEncoders().te2().adaptableLayers(),
                LoConPreset.TextEncoderModules.MLP_ONLY, te));
        targets.addAll(LoConPreset.unet(models.unet().layers(), models.unet().moduleClasses(), LoConRanks.recipe()));
        Generator gen = new Generator(3);
        LoConNetwork net = LoConNetwork.create(targets, scope, gen);
        for (LoConModule m : net.modules()) {
            scope.backend().copyInto(m.up(), scope.randUniform(m.up().shape(), DType.F32, -0.01, 0.01, gen));
        }
        return net;
    }

    private static Result measure(SdxlPipeline p, SdxlPipeline.Settings settings, Config c, String label,
                                  double modelSeconds, long weightBytes, Scope scope, boolean profile) {
        double[] image = new double[c.runs()];
        double[] sampling = new double[c.runs()];
        double[] decode = new double[c.runs()];
        double[] issue = new double[c.runs()];
        double[] wait = new double[c.runs()];
        for (int i = 0; i < c.warmup() + c.runs(); i++) {
            if (profile && i == c.warmup() + c.runs() - 1) {
                p.profileNextSampling();
            }
            p.render(scope, settings, List.of(new SdxlPipeline.Job(i, null)));
            SdxlPipeline.Timings t = p.lastTimings();
            if (i >= c.warmup()) {
                image[i - c.warmup()] = t.totalNanos() / 1e9;
                sampling[i - c.warmup()] = t.samplingNanos() / 1e9;
                decode[i - c.warmup()] = t.decodeNanos() / 1e9;
                issue[i - c.warmup()] = t.unetIssueNanos() / 1e9 / c.steps();
                wait[i - c.warmup()] = t.unetWaitNanos() / 1e9 / c.steps();
            }
        }
        double s = Stats.median(sampling);
        return new Result(label, Stats.median(image), s, s / c.steps(), Stats.median(issue), Stats.median(wait),
                Stats.median(decode), modelSeconds, weightBytes);
    }

}
