package tenmin.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.StDType;
import tenmin.tools.resize.LinearAlgebra;
import tenmin.tools.resize.Recipe;
import tenmin.tools.resize.Resize;
import tenmin.tools.resize.ResizeConfig;

/** {@code tenmin resize}: the options of resize_lora.py, mapped onto {@link ResizeConfig}. */
@Command(name = "resize",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
                "Shrink LoRAs: per layer, keep the singular directions of the LoRA delta that score above a threshold"
                        + " relative to the base checkpoint (resize_lora.py by elias-gaeros, its 2024 behaviour).",
                "Each LoRA gets one output per recipe, named <stem>_<recipe>_th<threshold>.safetensors.",
                "",
                "Recipes (-r): comma-separated key=value; several recipes separated by ':'.",
                "Score weights (normalised by their sum; a bare key means 1):",
                "  fro_ckpt   Frobenius norm of the checkpoint weight",
                "  spn_ckpt   spectral norm of the checkpoint weight",
                "  fro_lora   Frobenius norm of the LoRA delta",
                "  spn_lora   largest singular value of the LoRA delta",
                "  subspace   |u'Wv| of each direction",
                "  params     parameters per rank (out + in*k*k)",
                "  thr=T      keep direction i when log10(S_i) - sum(w*log10(ref)) > T",
                "             (more negative keeps more)",
                "  size=MiB   pick the threshold so that the output stays under MiB",
                "  rescale=x  multiply the kept singular values by x",
                "",
        },
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (nothing written)", "  1  internal failure",
                "", "Example:", "  tenmin resize -r fro_ckpt=1,thr=-3.55 sd_xl_base_1.0.safetensors my_lora.safetensors"})
public final class ResizeCommand implements Callable<Integer> {
    private final Session session;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "Base SDXL checkpoint (.safetensors) the LoRAs were trained on.")
    Path checkpoint;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "LORA", description = "LoRA files, each resized on its own.")
    List<Path> loras;

    @Option(names = {"-r", "--score_recipes"}, paramLabel = "RECIPES",
            description = "Recipes separated by ':' (default: ${DEFAULT-VALUE}).")
    String recipes = Recipe.DEFAULT;

    @Option(names = {"-o", "--output_folder"}, paramLabel = "DIR",
            description = "Output folder (created if missing; default: each LoRA's folder).")
    Path outputFolder;

    @Option(names = {"-t", "--output_dtype"}, paramLabel = "16|32", description = "Output precision: 16 (fp16, default) or 32 (fp32).")
    int outputDtype = 16;

    @Option(names = "-v", description = "More log output: -v info, -vv debug (per-layer ranks and errors).")
    boolean[] verbosity = new boolean[0];

    @Option(names = "--compat",
            description = "Score text encoder 2's q_proj/k_proj against the swapped checkpoint rows, as resize_lora.py does,"
                    + " so the output equals the reference's module for module (default: the correct rows).")
    boolean compat;

    @Option(names = "--norms-cache", paramLabel = "FILE",
            description = "Norms cache file (default: $XDG_CACHE_HOME/tenmin/norms_cache.json or ~/.cache/tenmin/norms_cache.json).")
    Path normsCache;

    @Option(names = "--no-norms-cache", description = "Neither read nor write a norms cache.")
    boolean noNormsCache;

    @Option(names = {"-j", "--threads"}, paramLabel = "N", description = "Worker threads (default: the number of CPU cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--linalg", paramLabel = "auto|openblas|java",
            description = "Linear algebra of the decompositions: OpenBLAS (unpacked by the build, or the system's"
                    + " libopenblas.so.0, or the file named by TENMIN_OPENBLAS), the built-in Java kernels, or auto"
                    + " (OpenBLAS when found, else Java; the default). Same results up to rounding.")
    String linalg = "auto";

    @Option(names = {"-d", "--device"}, paramLabel = "DEVICE", description = "Accepted for compatibility and ignored: resize runs on the CPU.")
    String device;

    @Mixin
    VerboseMixin verboseMixin;

    public ResizeCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws Exception {
        Reporter.Level level = verbosity.length >= 2 ? Reporter.Level.DEBUG
                : verbosity.length == 1 ? Reporter.Level.INFO : Reporter.Level.WARNING;
        Reporter reporter = session.reporter(level);
        List<Recipe> parsed = Recipe.parseAll(recipes);
        StDType dtype = switch (outputDtype) {
            case 16 -> StDType.F16;
            case 32 -> StDType.F32;
            default -> throw new InputException("-t/--output_dtype: expected 16 or 32, got " + outputDtype);
        };
        if (threads < 1) {
            throw new InputException("--threads: expected at least 1, got " + threads);
        }
        if (noNormsCache && normsCache != null) {
            throw new InputException("--norms-cache and --no-norms-cache contradict each other");
        }
        for (Path p : loras) {
            if (!Files.exists(p) && p.toString().contains(",")) {
                throw new InputException(p + ": no such file (merging LoRAs with the \"a.safetensors:0.6,b.safetensors:0.4\""
                        + " syntax is not supported; it is broken in resize_lora.py as well)");
            }
        }
        if (device != null) {
            reporter.log(Reporter.Level.WARNING, "WARNING:root:-d/--device " + device + " is ignored: tenmin resize runs on the CPU");
        }
        Path cache = noNormsCache ? null : normsCache != null ? normsCache : ResizeConfig.defaultNormsCache();
        LinearAlgebra algebra = switch (linalg.toLowerCase(java.util.Locale.ROOT)) {
            case "auto" -> LinearAlgebra.AUTO;
            case "openblas" -> LinearAlgebra.OPENBLAS;
            case "java" -> LinearAlgebra.JAVA;
            default -> throw new InputException("--linalg: expected auto, openblas or java, got " + linalg);
        };
        ResizeConfig config = new ResizeConfig(checkpoint, loras, parsed, outputFolder, dtype, compat, cache, threads,
                algebra);
        for (Resize.Output o : Resize.run(config, reporter)) {
            session.out().println(o.file());
        }
        return 0;
    }
}
