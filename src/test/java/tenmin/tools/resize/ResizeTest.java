package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.testing.LogLines;

/** resize end to end on the synthetic SDXL-shaped checkpoint and LoRA of {@link Synthetic}. */
class ResizeTest {
    private static final long SEED = 7;

    @TempDir
    Path dir;
    Path ckpt;
    Path lora;

    @BeforeEach
    void files() throws IOException {
        ckpt = dir.resolve("base.safetensors");
        lora = dir.resolve("mylora.safetensors");
        Synthetic.writeCheckpoint(ckpt, SEED);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("ss_network_dim", "8");
        meta.put("ss_network_alpha", "4");
        meta.put("ss_output_name", "mylora");
        Synthetic.writeLora(lora, SEED + 1, meta, Synthetic.MODULES);
    }

    private List<Resize.Output> run(String recipes, boolean compat, StDType dtype, Path cache, Reporter reporter)
            throws IOException {
        Path out = dir.resolve("out");
        return Resize.run(new ResizeConfig(ckpt, List.of(lora), Recipe.parseAll(recipes), out, dtype, compat, cache, 2),
                reporter);
    }

    /** Expected kept count per module: directions whose fro_ckpt score is above thr (none within 1e-4 of it). */
    static Map<String, Integer> keptByOracle(List<Synthetic.Expected> expected, double thr) {
        Map<String, Integer> kept = new LinkedHashMap<>();
        for (Synthetic.Expected e : expected) {
            int k = 0;
            for (double sc : e.scoresFroCkpt()) {
                assertTrue(Math.abs(sc - thr) > 1e-4, "test data sits on the knife edge of thr for " + e.name());
                k += sc > thr ? 1 : 0;
            }
            kept.put(e.name(), k);
        }
        return kept;
    }

    /** Checks every module of an output against the oracle's truncated SVD. */
    static void checkOutput(Path file, List<Synthetic.Expected> expected, Map<String, Integer> kept, double tol) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            int tensors = 0;
            for (Synthetic.Expected e : expected) {
                int d = kept.get(e.name());
                if (d == 0) {
                    assertFalse(f.contains(e.name() + ".alpha"), e.name() + " keeps no rank and must be dropped");
                    continue;
                }
                tensors += 3;
                long[] upShape = f.info(e.name() + ".lora_up.weight").shape();
                long[] downShape = f.info(e.name() + ".lora_down.weight").shape();
                assertEquals(e.out(), upShape[0]);
                assertEquals(d, upShape[1], e.name() + " kept ranks");
                assertEquals(d, downShape[0]);
                assertEquals(0, f.info(e.name() + ".alpha").rank(), "alpha is a scalar");
                float alphaNew = Oracle.read(f, e.name() + ".alpha")[0];
                float expectedAlpha = Half.roundTo((float) (e.alpha() / e.rank() * d), f.info(e.name() + ".alpha").dtype());
                assertEquals(expectedAlpha, alphaNew, e.name() + " alpha_new = alpha/r·d");
                double[] rec = Oracle.delta(Oracle.read(f, e.name() + ".lora_up.weight"),
                        Oracle.read(f, e.name() + ".lora_down.weight"), e.out(), d, e.cols(), alphaNew / d);
                double rel = Oracle.relError(e.svd().truncated(d), rec);
                assertTrue(rel < tol, e.name() + ": reconstruction error " + rel + " >= " + tol);
            }
            assertEquals(tensors, f.size(), "no other tensors");
        }
    }

    @Test
    void keepsTheDirectionsAboveTheThresholdAndReconstructsTheTruncatedSvd() throws IOException {
        List<Synthetic.Expected> expected = Synthetic.expect(ckpt, lora, Synthetic.targets(false));
        double thr = -2.25;
        Map<String, Integer> kept = keptByOracle(expected, thr);
        assertTrue(kept.values().stream().anyMatch(k -> k > 0), "some module keeps ranks");
        assertTrue(expected.stream().anyMatch(e -> kept.get(e.name()) < Math.min(e.rank(), e.s().length)), "some module is cut");

        List<Resize.Output> outs = run("fro_ckpt=1,thr=" + thr, false, StDType.F32, null, Reporter.SILENT);
        assertEquals(1, outs.size());
        assertEquals(dir.resolve("out").resolve("mylora_frockpt1_th-2.25.safetensors"), outs.get(0).file());
        checkOutput(outs.get(0).file(), expected, kept, 1e-5);

        outs = run("fro_ckpt=1,thr=" + thr, false, StDType.F16, null, Reporter.SILENT);
        checkOutput(outs.get(0).file(), expected, kept, 2e-3); // fp16 rounding of the factors
        try (SafetensorsFile f = SafetensorsFile.open(outs.get(0).file())) {
            assertEquals(StDType.F16, f.info("lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha").dtype());
            assertFalse(f.contains("lora_te1_text_model_encoder_layers_11_mlp_fc1.alpha"), "zero module dropped");
        }
    }

    @Test
    void keepsInputMetadataAndAddsResizeParams() throws IOException {
        Path file = run("fro_ckpt=1,thr=-2.25", false, StDType.F16, null, Reporter.SILENT).get(0).file();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("ss_network_dim", "ss_network_alpha", "ss_output_name", "resize_params"),
                    List.copyOf(f.metadata().keySet()));
            assertEquals("8", f.metadata().get("ss_network_dim"), "stale, as in the reference");
            assertEquals("{\"recipe_str\": \"fro_ckpt=1,thr=-2.25\", \"weights\": {\"spn_lora\": 0.0, \"spn_ckpt\": 0.0,"
                    + " \"subspace\": 0.0, \"fro_lora\": 0.0, \"fro_ckpt\": 1.0, \"params\": 0.0}, \"target_size\": null,"
                    + " \"threshold\": -2.25, \"rescale\": 1.0}", f.metadata().get("resize_params"));
        }
    }

    @Test
    void aLoraWithoutMetadataGetsOnlyResizeParams() throws IOException {
        Synthetic.writeLora(lora, SEED + 1, Map.of(), Synthetic.MODULES);
        Path file = run("fro_ckpt=1,thr=-2.25", false, StDType.F16, null, Reporter.SILENT).get(0).file();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("resize_params"), List.copyOf(f.metadata().keySet()));
        }
    }

    @Test
    void compatSwapChangesOnlyTheTextEncoder2QueryAndKeyScores() throws IOException {
        List<Synthetic.Expected> correct = Synthetic.expect(ckpt, lora, Synthetic.targets(false));
        List<Synthetic.Expected> swapped = Synthetic.expect(ckpt, lora, Synthetic.targets(true));
        double thr = -2.25;
        Map<String, Integer> keptCorrect = keptByOracle(correct, thr);
        Map<String, Integer> keptSwapped = keptByOracle(swapped, thr);
        String q = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj";
        String k = "lora_te2_text_model_encoder_layers_0_self_attn_k_proj";
        assertNotEquals(keptCorrect.get(q), keptSwapped.get(q), "q rows are 30x larger than k rows");
        assertNotEquals(keptCorrect.get(k), keptSwapped.get(k));

        Path a = run("fro_ckpt=1,thr=" + thr, false, StDType.F32, null, Reporter.SILENT).get(0).file();
        checkOutput(a, correct, keptCorrect, 1e-5);
        Path renamed = dir.resolve("correct.safetensors");
        Files.move(a, renamed);
        Path b = run("fro_ckpt=1,thr=" + thr, true, StDType.F32, null, Reporter.SILENT).get(0).file();
        checkOutput(b, swapped, keptSwapped, 1e-5);

        // every other module: identical bytes
        try (SafetensorsFile fa = SafetensorsFile.open(renamed); SafetensorsFile fb = SafetensorsFile.open(b)) {
            for (String name : fa.names()) {
                if (name.startsWith(q) || name.startsWith(k)) {
                    continue;
                }
                assertTrue(fa.segment(name).mismatch(fb.segment(name)) < 0, name + " differs between modes");
            }
        }
    }

    @Test
    void sizeModePicksTheThresholdOfTheGreedyKnapsack() throws IOException {
        List<Synthetic.Expected> expected = Synthetic.expect(ckpt, lora, Synthetic.targets(false));
        // the oracle: all directions by score, descending; fp16 cost 2·(out + in·k·k) each
        List<double[]> all = new ArrayList<>(); // {score, cost}
        for (Synthetic.Expected e : expected) {
            for (double sc : e.scoresFroCkpt()) {
                all.add(new double[] {sc, 2.0 * (e.out() + e.cols())});
            }
        }
        all.sort((x, y) -> Double.compare(y[0], x[0]));
        double totalBytes = all.stream().mapToDouble(x -> x[1]).sum();
        double target = totalBytes * 0.4;
        double cum = 0;
        double threshold = Double.NaN;
        for (double[] x : all) {
            cum += x[1];
            if (cum >= target) {
                threshold = x[0];
                break;
            }
        }
        Map<String, Integer> kept = new HashMap<>();
        double keptBytes = 0;
        for (Synthetic.Expected e : expected) {
            int k = 0;
            for (double sc : e.scoresFroCkpt()) {
                k += sc > threshold ? 1 : 0;
            }
            kept.put(e.name(), k);
            keptBytes += k * 2.0 * (e.out() + e.cols());
        }
        assertTrue(keptBytes < target);

        double mib = target / (1 << 20);
        Resize.Output o = run("fro_ckpt=1,size=" + mib, false, StDType.F16, null, Reporter.SILENT).get(0);
        assertEquals(threshold, o.threshold(), 1e-5);
        assertEquals("mylora_frockpt1_size0_th" + Recipe.shortFloat(o.threshold()) + ".safetensors",
                o.file().getFileName().toString());
        checkOutput(o.file(), expected, kept, 2e-3);
    }

    @Test
    void severalRecipesGiveSeveralOutputsFromTheSameDecompositions() throws IOException {
        List<Resize.Output> outs = run("fro_ckpt=1,thr=-2.25:spn_lora=1,thr=-1:fro_ckpt=1,rescale=0.5,thr=-2.25", false,
                StDType.F16, null, Reporter.SILENT);
        assertEquals(List.of("mylora_frockpt1_th-2.25.safetensors", "mylora_spnlora1_th-1.safetensors",
                "mylora_frockpt1_scale0.5_th-2.25.safetensors"),
                outs.stream().map(o -> o.file().getFileName().toString()).toList());
        // spn_lora=1,thr=-1 keeps S_i > S_0/10 in every layer
        List<Synthetic.Expected> expected = Synthetic.expect(ckpt, lora, Synthetic.targets(false));
        Map<String, Integer> kept = new HashMap<>();
        for (Synthetic.Expected e : expected) {
            kept.put(e.name(), (int) Arrays.stream(e.s()).filter(s -> Math.log10(s / e.s()[0]) > -1).count());
        }
        checkOutput(outs.get(1).file(), expected, kept, 2e-3);
    }

    @Test
    void writesAndReusesTheNormsCacheInTheReferenceLayout() throws IOException {
        Path cache = dir.resolve("cache").resolve("norms.json");
        LogLines first = new LogLines();
        Path out1 = run("fro_ckpt=1,thr=-2.25", false, StDType.F16, cache, first).get(0).file();
        byte[] bytes1 = Files.readAllBytes(out1);
        JsonNode root = new ObjectMapper().readTree(cache.toFile());
        JsonNode entry = root.get(ckpt.toRealPath().toString());
        assertTrue(entry.has("spectral_norms"));
        JsonNode fro = entry.get("frobenius_norms");
        assertEquals(9, fro.size(), "one norm per paired module");
        // the reference's names: in_proj chunk 0 (q rows) under k_proj
        try (SafetensorsFile ck = SafetensorsFile.open(ckpt)) {
            float[] inProj = Oracle.read(ck, Synthetic.TE2 + "0.attn.in_proj_weight");
            double qNorm = Oracle.frobenius(Oracle.rows(inProj, 16, 0, 16));
            double kNorm = Oracle.frobenius(Oracle.rows(inProj, 16, 16, 32));
            assertEquals(qNorm, fro.get("lora_te2_text_model_encoder_layers_0_self_attn_k_proj").asDouble(), 1e-5 * qNorm);
            assertEquals(kNorm, fro.get("lora_te2_text_model_encoder_layers_0_self_attn_q_proj").asDouble(), 1e-5 * kNorm);
        }
        assertTrue(first.lines().stream().noneMatch(l -> l.startsWith("INFO:root:Loading ")));
        assertTrue(first.lines().stream().anyMatch(l -> l.startsWith("DEBUG:root:Loading base weight ")));

        LogLines second = new LogLines();
        Files.delete(out1);
        Path out2 = run("fro_ckpt=1,thr=-2.25", false, StDType.F16, cache, second).get(0).file();
        assertTrue(second.lines().contains("INFO:root:Loading " + cache));
        assertTrue(second.lines().stream().noneMatch(l -> l.startsWith("DEBUG:root:Loading base weight ")), "all cached");
        assertTrue(Arrays.equals(bytes1, Files.readAllBytes(out2)), "same output from cached norms");
    }

    @Test
    void aCorruptNormsCacheIsIgnoredAndLeftAlone() throws IOException {
        Path cache = dir.resolve("norms.json");
        Files.writeString(cache, "{not json");
        LogLines log = new LogLines();
        run("fro_ckpt=1,thr=-2.25", false, StDType.F16, cache, log);
        assertEquals("{not json", Files.readString(cache));
        assertTrue(log.lines().stream().anyMatch(l -> l.startsWith("WARNING:root:Cannot read norms cache")));
    }

    @Test
    void spectralNormsMatchAnExactSvd() throws IOException {
        Path cache = dir.resolve("norms.json");
        run("spn_ckpt=1,thr=-1", false, StDType.F16, cache, Reporter.SILENT);
        JsonNode spn = new ObjectMapper().readTree(cache.toFile()).get(ckpt.toRealPath().toString()).get("spectral_norms");
        try (SafetensorsFile ck = SafetensorsFile.open(ckpt)) {
            for (Map.Entry<String, Synthetic.Target> e : Synthetic.targets(true).entrySet()) {
                if (e.getKey().contains("layers_11")) {
                    continue; // zero module: still paired, its norm is cached too
                }
                Synthetic.Target t = e.getValue();
                float[] w = Oracle.read(ck, t.key());
                int cols = (int) (ck.info(t.key()).numel() / ck.info(t.key()).shape()[0]);
                double exact = Oracle.spectralNorm(Oracle.rows(w, cols, t.rowFrom(), t.rowTo()), t.rowTo() - t.rowFrom(), cols);
                assertEquals(exact, spn.get(e.getKey()).asDouble(), 1e-5 * exact, e.getKey());
            }
        }
    }
}
