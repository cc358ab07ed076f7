package tenmin.tools.resize;

import java.nio.file.Path;
import java.util.List;

import tenmin.formats.StDType;

/**
 * Everything one resize run needs (built by the command line, or by a caller of {@link Resize#run}).
 *
 * @param checkpoint   the base SDXL single-file checkpoint the LoRAs were trained on
 * @param loras        LoRA files, each resized on its own
 * @param recipes      one output per recipe and LoRA, all from the same decompositions
 * @param outputDir    folder of the outputs; null means each LoRA's own folder (the reference's default)
 * @param outputDtype  {@link StDType#F16} (default) or {@link StDType#F32}
 * @param compat       reproduce the reference's text-encoder-2 q/k pairing swap (§2.3)
 * @param normsCache   the norms cache file, or null for none
 * @param threads      worker threads (at least 1)
 * @param linalg       the linear algebra of the decompositions (OpenBLAS or Java)
 */
public record ResizeConfig(Path checkpoint, List<Path> loras, List<Recipe> recipes, Path outputDir,
                           StDType outputDtype, boolean compat, Path normsCache, int threads, LinearAlgebra linalg) {

    /** A configuration with {@link LinearAlgebra#AUTO}. */
    public ResizeConfig(Path checkpoint, List<Path> loras, List<Recipe> recipes, Path outputDir, StDType outputDtype,
                        boolean compat, Path normsCache, int threads) {
        this(checkpoint, loras, recipes, outputDir, outputDtype, compat, normsCache, threads, LinearAlgebra.AUTO);
    }

    public ResizeConfig {
        loras = List.copyOf(loras);
        recipes = List.copyOf(recipes);
        if (outputDtype != StDType.F16 && outputDtype != StDType.F32) {
            throw new IllegalArgumentException("output dtype must be F16 or F32, not " + outputDtype);
        }
        if (linalg == null) {
            throw new IllegalArgumentException("linalg must not be null");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1");
        }
    }

    /** The default norms cache location (see {@link NormsCache#defaultFile()}). */
    public static Path defaultNormsCache() {
        return NormsCache.defaultFile();
    }
}
