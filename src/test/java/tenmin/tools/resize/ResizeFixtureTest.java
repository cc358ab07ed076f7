package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.testing.Fixtures;

/**
 * resize on every fixture model (the tiny SDXL checkpoint and the LyCORIS LoCons made by the upstream
 * code), checked module by module against dense double-precision SVDs.
 */
class ResizeFixtureTest {
    @TempDir
    Path dir;

    /** The test's own module → checkpoint rows rule (kohya naming; TE2 in_proj rows q, k, v). */
    static Map<String, Synthetic.Target> targets(SafetensorsFile ckpt, boolean referenceSwap) {
        Map<String, Synthetic.Target> map = new LinkedHashMap<>();
        for (String key : ckpt.names()) {
            long[] shape = ckpt.info(key).shape();
            if (shape.length < 2) {
                continue;
            }
            int rows = (int) shape[0];
            if (key.startsWith(Synthetic.UNET) && key.endsWith(".weight")) {
                String path = key.substring(Synthetic.UNET.length(), key.length() - 7);
                map.put("lora_unet_" + path.replace('.', '_'), new Synthetic.Target(key, 0, rows));
            } else if (key.startsWith(Synthetic.TE1) && key.endsWith(".weight")) {
                String path = key.substring(Synthetic.TE1.length(), key.length() - 7);
                map.put("lora_te1_text_model_encoder_layers_" + path.replace('.', '_'), new Synthetic.Target(key, 0, rows));
            } else if (key.startsWith(Synthetic.TE2)) {
                String rest = key.substring(Synthetic.TE2.length());
                String layer = rest.substring(0, rest.indexOf('.'));
                String base = "lora_te2_text_model_encoder_layers_" + layer + "_";
                String what = rest.substring(rest.indexOf('.') + 1);
                int c = rows / 3;
                switch (what) {
                    case "attn.in_proj_weight" -> {
                        map.put(base + "self_attn_q_proj", new Synthetic.Target(key, referenceSwap ? c : 0, referenceSwap ? 2 * c : c));
                        map.put(base + "self_attn_k_proj", new Synthetic.Target(key, referenceSwap ? 0 : c, referenceSwap ? c : 2 * c));
                        map.put(base + "self_attn_v_proj", new Synthetic.Target(key, 2 * c, 3 * c));
                    }
                    case "attn.out_proj.weight" -> map.put(base + "self_attn_out_proj", new Synthetic.Target(key, 0, rows));
                    case "mlp.c_fc.weight" -> map.put(base + "mlp_fc1", new Synthetic.Target(key, 0, rows));
                    case "mlp.c_proj.weight" -> map.put(base + "mlp_fc2", new Synthetic.Target(key, 0, rows));
                    default -> { }
                }
            }
        }
        return map;
    }

    /** A threshold halfway between two neighbouring scores around the 40th percentile (never on an edge). */
    static double threshold(List<Synthetic.Expected> expected) {
        List<Double> all = new ArrayList<>();
        for (Synthetic.Expected e : expected) {
            for (double s : e.scoresFroCkpt()) {
                all.add(s);
            }
        }
        all.sort(null);
        int i = (int) (all.size() * 0.4);
        while (all.get(i + 1) - all.get(i) < 1e-3) {
            i++;
        }
        return (all.get(i) + all.get(i + 1)) / 2;
    }

    private void check(Path ckpt, Path lora, boolean compat, LinearAlgebra linalg) throws IOException {
        Map<String, Synthetic.Target> targets;
        try (SafetensorsFile ck = SafetensorsFile.open(ckpt)) {
            targets = targets(ck, compat);
        }
        List<Synthetic.Expected> expected = Synthetic.expect(ckpt, lora, targets);
        assertTrue(expected.size() > 10, "modules paired for " + lora);
        double thr = threshold(expected);
        Map<String, Integer> kept = ResizeTest.keptByOracle(expected, thr);
        Path out = dir.resolve((compat ? "compat-" : "default-") + linalg);
        List<Resize.Output> outs = Resize.run(new ResizeConfig(ckpt, List.of(lora),
                List.of(Recipe.parse("fro_ckpt=1,thr=" + thr)), out, StDType.F32, compat, null, 2, linalg),
                Reporter.SILENT);
        ResizeTest.checkOutput(outs.get(0).file(), expected, kept, 1e-4);
    }

    @Test
    void resizesTheFixtureLoconsLikeADenseSvd() throws IOException {
        for (Path model : Fixtures.modelDirs()) {
            Path ckpt = model.resolve("checkpoint.safetensors");
            for (String name : List.of("locon.safetensors", "te-locon.safetensors")) {
                Path lora = model.resolve(name);
                if (Files.exists(lora)) {
                    for (LinearAlgebra linalg : List.of(LinearAlgebra.JAVA, LinearAlgebra.OPENBLAS)) {
                        check(ckpt, lora, false, linalg);
                        check(ckpt, lora, true, linalg);
                    }
                }
            }
        }
    }
}
