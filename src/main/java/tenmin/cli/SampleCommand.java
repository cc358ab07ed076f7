package tenmin.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.lora.BlockWeights;
import tenmin.sample.ImageFiles;
import tenmin.sample.LoraSet;
import tenmin.sample.LoraSpec;
import tenmin.sample.ModelSource;
import tenmin.sample.PromptEncoder;
import tenmin.sample.PromptFile;
import tenmin.sample.SdxlPipeline;

/** {@code tenmin sample}: text-to-image with an SDXL checkpoint and LoRAs, PNGs with A1111 metadata. */
@Command(name = "sample", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Generates images with an SDXL checkpoint and optional LoRAs (each with a strength and an optional"
                        + " block-weight vector, applied in memory: no file is written). Prompts use A1111's syntax:"
                        + " (word:1.2), (word), [word], BREAK, any length (75-token chunks for both text encoders).",
                "Each image is saved as DIR/<number>-<seed>.png (the number continues after the largest one in DIR,"
                        + " nothing is overwritten) with the A1111 'parameters' text that PNG Info, ComfyUI and"
                        + " civitai read: prompt, negative prompt, steps, sampler, CFG scale, seed, size, model name and"
                        + " hash, LoRA names and hashes. Same seed and settings on the same backend: the same image."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (prompt syntax, sizes, missing or mismatched files, bad"
                + " block vectors); no image is written", "  1  internal failure",
                "", "Examples:",
                "  tenmin sample --model sd_xl_base_1.0.safetensors --lora my-lora.safetensors:0.8 \\",
                "      --prompt \"a photo of a cat, (detailed:1.2)\" --negative blurry --seed 42 -o out",
                "  tenmin sample --model base.safetensors --lora my-lora.safetensors:1:SDXL-LyC-OUTALL --prompts prompts.txt -o out",
                "  tenmin sample --random-model tiny --width 256 --height 256 --steps 8 --prompt test -o /tmp/demo"})
public final class SampleCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    ModelOptions model;

    @Option(names = "--lora", paramLabel = "FILE[:STRENGTH[:BLOCKVECTOR]]", description = "A LoRA/LoCon to apply"
            + " (repeatable): strength default 1; the vector in any form 'tenmin blocks' reads (Inspire-Pack list"
            + " with BASE first, preset such as SDXL-LyC-OUTALL, %%default=0,out=1, A1111 12/20 slots).")
    List<String> loras = new ArrayList<>();

    @Option(names = "--lora-mode", paramLabel = "MODE", description = "merge: add each LoRA into the weights once, as"
            + " ComfyUI and A1111 do, in the weights' own precision (an fp16 checkpoint stays 16-bit): a sampling step"
            + " then costs what it costs without the LoRA; bypass: run each as a branch beside its layer, in full"
            + " precision; auto (default): merge, except on the CPU engine for short runs (less sampling work than"
            + " 20 steps at 512x512), where the merge (about 30 s for the recipe LoCon on full SDXL with 2 cores) would"
            + " cost more than the branches.")
    String loraMode = "auto";

    /** Sampling work (steps × pixels, summed over the run) below which the CPU engine runs LoRAs as branches. */
    static final double CPU_MERGE_MIN_WORK = 20.0 * 512 * 512;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "The prompt (or --prompts).")
    String prompt;

    @Option(names = "--prompts", paramLabel = "FILE", description = "kohya sample-prompt file: one prompt per line with"
            + " --w --h --d (seed) --s (steps) --l (CFG) --n (negative) --ss (sampler); .toml and .json too. The options"
            + " of this command are the defaults of every line.")
    Path prompts;

    @Mixin
    GenerationOptions generation;

    @Option(names = "--batch", paramLabel = "N", description = "Images per prompt, rendered together; image i uses seed + i"
            + " (default ${DEFAULT-VALUE}).")
    int batch = 1;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "DIR", description = "Folder for the images (created"
            + " when missing).")
    Path output;

    @Option(names = "--no-model-hash", description = "Leave the model hash out of the image metadata (it reads the whole"
            + " checkpoint once).")
    boolean noModelHash;

    @Mixin
    VerboseMixin verboseMixin;

    public SampleCommand(Session session) {
        this.session = session;
    }

    /** One prompt to render: its settings, first seed, and where it came from (for messages). */
    private record PromptJob(SdxlPipeline.Settings settings, long seed, String where) {
    }

    @Override
    public Integer call() {
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        if (batch < 1 || batch > 64) {
            throw new InputException("--batch must be between 1 and 64, got " + batch);
        }
        if (!List.of("auto", "merge", "bypass").contains(loraMode)) {
            throw new InputException("--lora-mode " + loraMode + ": expected auto, merge or bypass");
        }
        List<LoraSpec> specs = loras.stream().map(LoraSpec::parse).toList();
        ModelSource source = model.source();
        List<PromptJob> jobs = promptJobs(source, reporter);
        List<LoraSet.Prepared> prepared = LoraSet.prepare(specs, source.config(), BlockWeights.Options.defaults(), reporter);
        ImageFiles files = ImageFiles.in(output);
        SdxlPipeline.ModelId id = source.id(!noModelHash && source instanceof ModelSource.Checkpoint, reporter);
        reporter.log(Reporter.Level.INFO, "model: " + id.name() + (id.hash() == null ? "" : " [" + id.hash() + "]")
                + "; " + jobs.size() + " prompt(s) x " + batch + " image(s) -> " + output);
        for (LoraSet.Prepared p : prepared) {
            reporter.log(Reporter.Level.INFO, "lora: " + p.spec().file() + " strength " + p.spec().strength()
                    + (p.weights() == null ? "" : " blocks " + p.weights().populated()) + " [" + p.hash() + "]");
        }
        int images = 0;
        long start = System.nanoTime();
        try (ModelOptions.Loaded loaded = model.load(source, prepared, reporter)) {
            double work = 0;
            for (PromptJob job : jobs) {
                work += (double) job.settings().sampler().steps() * job.settings().width() * job.settings().height() * batch;
            }
            boolean merge = loraMode.equals("merge") || (loraMode.equals("auto")
                    && (loaded.backend().name().equals("torch") || work >= CPU_MERGE_MIN_WORK));
            if (merge && !loaded.loras().isEmpty()) {
                long t0 = System.nanoTime();
                loaded.loras().merge(); // every render here uses the default multipliers
                reporter.log(Reporter.Level.INFO, String.format(Locale.ROOT, "INFO: LoRAs merged into the weights in %.1f s"
                        + " (--lora-mode bypass runs them as branches)", (System.nanoTime() - t0) / 1e9));
            }
            SdxlPipeline pipeline = new SdxlPipeline(loaded.models(), loaded.loras(), generation.promptOptions(), reporter,
                    model.vPrediction);
            long renderStart = System.nanoTime();
            for (PromptJob job : jobs) {
                List<SdxlPipeline.Job> batchJobs = new ArrayList<>();
                for (int i = 0; i < batch; i++) {
                    batchJobs.add(new SdxlPipeline.Job(job.seed() + i, null));
                }
                for (SdxlPipeline.Image image : pipeline.render(loaded.root(), job.settings(), batchJobs)) {
                    long seed = image.job().seed();
                    String text = SdxlPipeline.parameters(job.settings(), seed, id, prepared, Map.of());
                    session.out().println(files.writeImage(image.image(), seed, text));
                    images++;
                }
            }
            double seconds = (System.nanoTime() - renderStart) / 1e9;
            reporter.log(Reporter.Level.INFO, String.format(Locale.ROOT, "%d image(s) in %.1f s (%.2f s per image;"
                    + " %.1f s in all with loading)", images, seconds, seconds / images, (System.nanoTime() - start) / 1e9));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return 0;
    }

    /** Every prompt with its settings and seed, checked before any work (syntax, sizes, sampler). */
    private List<PromptJob> promptJobs(ModelSource source, Reporter reporter) {
        if ((prompt == null) == (prompts == null)) {
            throw new InputException("give either --prompt TEXT or --prompts FILE");
        }
        List<PromptJob> out = new ArrayList<>();
        if (prompt != null) {
            out.add(job(source, prompt, generation.negative, generation.width, generation.height, generation.steps,
                    generation.cfg, generation.sampler, generation.seed, "--prompt", "--"));
            return out;
        }
        PromptFile.Defaults defaults = new PromptFile.Defaults(generation.width, generation.height, generation.steps,
                generation.cfg, generation.negative, generation.sampler);
        List<PromptFile.SamplePrompt> list = PromptFile.read(prompts, defaults, reporter);
        if (list.isEmpty()) {
            throw new InputException(prompts + ": no prompts (blank lines and # comments only)");
        }
        for (PromptFile.SamplePrompt p : list) {
            String where = prompts + " prompt " + (p.index() + 1);
            out.add(job(source, p.prompt(), p.negativePrompt(), p.width(), p.height(), p.steps(), p.scale(), p.sampler(),
                    p.seed() == null ? -1 : p.seed(), where, where + ": "));
        }
        return out;
    }

    private PromptJob job(ModelSource source, String text, String negative, int width, int height, int steps, double cfg,
                          String sampler, long seed, String where, String sizeWhere) {
        PromptEncoder.check(text, where, PromptEncoder.Options.A1111);
        PromptEncoder.check(negative, where + " negative prompt", PromptEncoder.Options.A1111);
        SdxlPipeline.checkSize(source.config(), width, height, sizeWhere);
        SdxlPipeline.Settings settings;
        try {
            settings = new SdxlPipeline.Settings(text, negative, width, height, generation.samplerSettings(sampler, steps), cfg);
        } catch (InputException e) {
            throw new InputException(where + ": " + e.getMessage(), e);
        }
        long first = GenerationOptions.seedOrRandom(seed, where);
        if (first > Long.MAX_VALUE - batch) {
            throw new InputException(where + ": seed " + first + " is too large");
        }
        return new PromptJob(settings, first, where);
    }
}
