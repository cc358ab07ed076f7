package tenmin.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.tools.bench.BenchInputs;

/** {@code tenmin bench make-inputs DIR}: the synthetic full-size checkpoint and LoCon of the benchmarks. */
@Command(name = "make-inputs",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
                "Write the benchmark inputs into DIR: sdxl-random.safetensors (full-size SDXL checkpoint with random fp16"
                        + " weights in the real key layout, UNet, both text encoders and the VAE, about 6.9 GB) and"
                        + " locon-random.safetensors (LoCon of the guide's shape: 788 UNet + 88 text-encoder modules, 234 MB).",
                "Deterministic from --seed. The layout is read from the fixtures' sdxl-keys.json."},
        footerHeading = "%nExit codes:%n",
        footer = {"  0  success", "  2  bad usage or bad input (nothing written)", "  1  internal failure",
                "", "Example:", "  tenmin bench make-inputs bench/ --what locon"})
public final class MakeInputsCommand implements Callable<Integer> {
    static final String CHECKPOINT_NAME = "sdxl-random.safetensors";
    static final String LOCON_NAME = "locon-random.safetensors";

    /** Which files to write. */
    enum What { both, checkpoint, locon }

    private final Session session;

    @Parameters(index = "0", paramLabel = "DIR", description = "Output folder (created if missing).")
    Path dir;

    @Option(names = "--seed", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed = 20241125L;

    @Option(names = "--what", description = "both (default), checkpoint or locon.")
    What what = What.both;

    @Option(names = "--layout", paramLabel = "FILE",
            description = "sdxl-keys.json (default: $TENMIN_FIXTURES/sdxl-keys.json, else shared/fixtures/sdxl-keys.json"
                    + " beside the working folder or one of its parents).")
    Path layout;

    @Mixin
    VerboseMixin verboseMixin;

    public MakeInputsCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws Exception {
        Path layoutFile = layout != null ? layout : findLayout();
        BenchInputs.Layout l = BenchInputs.readLayout(layoutFile);
        Files.createDirectories(dir);
        Reporter reporter = session.reporter(Reporter.Level.INFO);
        if (what != What.locon) {
            Path f = dir.resolve(CHECKPOINT_NAME);
            BenchInputs.writeCheckpoint(l, f, seed, reporter);
            session.out().println(f);
        }
        if (what != What.checkpoint) {
            Path f = dir.resolve(LOCON_NAME);
            BenchInputs.writeLocon(l, f, seed, reporter);
            session.out().println(f);
        }
        return 0;
    }

    private static Path findLayout() {
        String env = System.getenv("TENMIN_FIXTURES");
        if (env != null && !env.isBlank()) {
            return Path.of(env, "sdxl-keys.json");
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path c = d.resolve("shared").resolve("fixtures").resolve("sdxl-keys.json");
            if (Files.isRegularFile(c)) {
                return c;
            }
        }
        throw new InputException("no sdxl-keys.json found (set TENMIN_FIXTURES or pass --layout FILE)");
    }
}
