package tenmin.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.AtomicFile;
import tenmin.lora.BlockWeights;
import tenmin.sample.AtlasReport;
import tenmin.sample.BlockAtlas;
import tenmin.sample.ImageFiles;
import tenmin.sample.LoraSet;
import tenmin.sample.LoraSpec;
import tenmin.sample.ModelSource;
import tenmin.sample.PromptEncoder;
import tenmin.sample.SdxlPipeline;

/** {@code tenmin atlas}: which U-Net blocks of a LoRA carry its effect, seen in images, and a chop vector. */
@Command(name = "atlas", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Renders one prompt and seed without the LoRA, with all of it, with each unit alone (BASE = text"
                        + " encoders and modules outside the blocks, then every U-Net block in chop's layout) and, with"
                        + " --remove, with each unit removed. Writes one labelled grid image, a CSV and a JSON table, and"
                        + " prints the table: per unit its energy (sum of |dW|_F, as 'tenmin inspect'), how far its image"
                        + " moves from the base image and how much of the way to the full-LoRA image it covers.",
                "From that it proposes the smallest set of units (best first) whose own render covers --threshold of"
                        + " the way to the full-LoRA image, printed as a chop vector ('tenmin chop LORA VECTOR',"
                        + " chop_blocks.py) and as an Inspire-Pack block vector. Distances: RMS of the 8-bit images"
                        + " (0..1); see docs/FORMATS.md."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (prompt syntax, sizes, missing or mismatched files)",
                "  1  internal failure", "", "Example:",
                "  tenmin atlas --model sd_xl_base_1.0.safetensors --lora my-lora.safetensors --prompt \"1girl, red hair\" \\",
                "      --seed 42 --steps 20 --remove -o atlas"})
public final class AtlasCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    ModelOptions model;

    @Option(names = "--lora", required = true, paramLabel = "FILE[:STRENGTH[:BLOCKVECTOR]]",
            description = "The LoRA to analyse (strength default 1; a block vector changes what 'full' means).")
    String lora;

    @Option(names = {"-p", "--prompt"}, required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Mixin
    GenerationOptions generation;

    @Option(names = "--remove", description = "Also render each unit removed from the full LoRA.")
    boolean remove;

    @Option(names = "--threshold", paramLabel = "X", description = "Share of the way to the full-LoRA image the proposed"
            + " blocks must cover (0..1]; default ${DEFAULT-VALUE}.")
    double threshold = 0.9;

    @Option(names = "--batch", paramLabel = "N", description = "Renders per U-Net batch (more is faster where memory"
            + " allows); default ${DEFAULT-VALUE}.")
    int batch = 4;

    @Option(names = "--cell", paramLabel = "PX", description = "Largest side of a grid cell: images are shrunk by an"
            + " integer factor to fit (0 = full size); default ${DEFAULT-VALUE}.")
    int cell = 256;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "DIR", description = "Folder for the grid and"
            + " tables (created when missing): <number>-atlas-<lora>-<seed>.png, .csv, .json.")
    Path output;

    @Option(names = "--no-model-hash", description = "Leave the model hash out of the grid's metadata.")
    boolean noModelHash;

    @Mixin
    VerboseMixin verboseMixin;

    public AtlasCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() {
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        if (cell < 0) {
            throw new InputException("--cell must be >= 0, got " + cell);
        }
        LoraSpec spec = LoraSpec.parse(lora);
        ModelSource source = model.source();
        PromptEncoder.check(prompt, "--prompt", PromptEncoder.Options.A1111);
        PromptEncoder.check(generation.negative, "--negative", PromptEncoder.Options.A1111);
        SdxlPipeline.checkSize(source.config(), generation.width, generation.height, "--");
        SdxlPipeline.Settings settings = new SdxlPipeline.Settings(prompt, generation.negative, generation.width,
                generation.height, generation.samplerSettings(generation.sampler, generation.steps), generation.cfg);
        long seed = GenerationOptions.seedOrRandom(generation.seed, "--seed");
        BlockAtlas.Config config = new BlockAtlas.Config(settings, seed, remove, threshold, batch);
        List<LoraSet.Prepared> prepared = LoraSet.prepare(List.of(spec), source.config(), BlockWeights.Options.defaults(),
                reporter);
        ImageFiles files = ImageFiles.in(output);
        SdxlPipeline.ModelId id = source.id(!noModelHash && source instanceof ModelSource.Checkpoint, reporter);
        try (ModelOptions.Loaded loaded = model.load(source, prepared, reporter)) {
            SdxlPipeline pipeline = new SdxlPipeline(loaded.models(), loaded.loras(), generation.promptOptions(), reporter,
                    model.vPrediction);
            BlockAtlas.Result result = BlockAtlas.run(pipeline, config, cell, loaded.root(), reporter);
            Path base = files.reserve("atlas-" + spec.name() + "-" + seed);
            Path png = ImageFiles.withExtension(base, ".png");
            Path csv = ImageFiles.withExtension(base, ".csv");
            Path json = ImageFiles.withExtension(base, ".json");
            ImageFiles.write(png, result.grid(), SdxlPipeline.parameters(settings, seed, id, prepared,
                    Map.of("Atlas", "tenmin atlas, " + result.renders() + " renders")));
            AtomicFile.write(csv, AtlasReport.csv(result).getBytes(StandardCharsets.UTF_8));
            AtomicFile.write(json, AtlasReport.json(result, prepared.getFirst(), config, png.getFileName().toString())
                    .getBytes(StandardCharsets.UTF_8));
            AtlasReport.text(result, prepared.getFirst(), threshold).forEach(session.out()::println);
            session.out().println("Saved " + png);
            session.out().println("Saved " + csv);
            session.out().println("Saved " + json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return 0;
    }
}
