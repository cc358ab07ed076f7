package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.DenseDelta;

/**
 * The OpenBLAS path reads the down factor in blocks of columns straight from the file; on a conv whose
 * in·k·k (720) spans two blocks with a partial one, in every LoRA dtype, it keeps the same ranks and writes the
 * same deltas as the Java path (which the other resize tests hold to a dense SVD).
 */
class LinalgResizeTest {
    private static final String KEY = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight";
    private static final String MODULE = "lora_unet_input_blocks_1_0_in_layers_2";
    private static final int OUT = 16;
    private static final int IN = 80;
    private static final int RANK = 8;

    @TempDir
    Path dir;

    private static float[] random(SplittableRandom rnd, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return x;
    }

    private Path run(Path ckpt, Path lora, LinearAlgebra linalg) throws IOException {
        List<Resize.Output> outs = Resize.run(new ResizeConfig(ckpt, List.of(lora), Recipe.parseAll("fro_ckpt=1,thr=-2.2"),
                dir.resolve(linalg.name()), StDType.F32, false, null, 2, linalg), Reporter.SILENT);
        return outs.get(0).file();
    }

    @Test
    void blockedGramMatchesTheJavaPathInEveryDtype() throws IOException {
        SplittableRandom rnd = new SplittableRandom(3);
        Path ckpt = dir.resolve("base.safetensors");
        new SafetensorsWriter().addFloats(KEY, StDType.F16, new long[] {OUT, IN, 3, 3}, random(rnd, OUT * IN * 9, 0.05))
                .write(ckpt);
        float[] up = random(rnd, OUT * RANK, 0.1);
        for (int o = 0; o < OUT; o++) {
            for (int j = 0; j < RANK; j++) {
                up[o * RANK + j] *= (float) Math.pow(0.3, j); // a spectrum the threshold cuts
            }
        }
        float[] down = random(rnd, RANK * IN * 9, 0.1);
        for (StDType dtype : List.of(StDType.F16, StDType.BF16, StDType.F32)) {
            Path lora = dir.resolve("lora-" + dtype + ".safetensors");
            new SafetensorsWriter()
                    .addFloats(MODULE + ".lora_down.weight", dtype, new long[] {RANK, IN, 3, 3}, down)
                    .addFloats(MODULE + ".lora_up.weight", dtype, new long[] {OUT, RANK, 1, 1}, up)
                    .addFloats(MODULE + ".alpha", dtype, new long[0], new float[] {4})
                    .write(lora);
            try (SafetensorsFile java = SafetensorsFile.open(run(ckpt, lora, LinearAlgebra.JAVA));
                 SafetensorsFile blas = SafetensorsFile.open(run(ckpt, lora, LinearAlgebra.OPENBLAS))) {
                long kept = java.info(MODULE + ".lora_down.weight").dim(0);
                assertEquals(kept, blas.info(MODULE + ".lora_down.weight").dim(0), "kept rank, " + dtype);
                assertEquals(true, kept > 1 && kept < RANK, "the threshold cuts some ranks: " + kept);
                DenseDelta.Delta dj = DenseDelta.of(java, MODULE);
                DenseDelta.Delta db = DenseDelta.of(blas, MODULE);
                for (int i = 0; i < dj.values().length; i++) {
                    assertEquals(dj.values()[i], db.values()[i], 1e-6 * dj.frobenius(), dtype + " delta element " + i);
                }
            }
        }
    }
}
