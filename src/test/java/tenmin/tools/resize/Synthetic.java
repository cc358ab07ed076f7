package tenmin.tools.resize;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;

/**
 * A small SDXL-shaped checkpoint and a LoRA for it, built in the tests, plus the test's own idea of which
 * checkpoint rows each LoRA module modifies (written out by hand, independent of the production key map).
 */
final class Synthetic {
    static final String UNET = "model.diffusion_model.";
    static final String TE1 = "conditioner.embedders.0.transformer.text_model.encoder.layers.";
    static final String TE2 = "conditioner.embedders.1.model.transformer.resblocks.";

    /** Where a module's delta goes: rows [rowFrom, rowTo) of a checkpoint key. */
    record Target(String key, int rowFrom, int rowTo) {
    }

    /** A LoRA module to generate. */
    record ModuleSpec(String name, int out, int in, int kernel, int rank, double alpha, boolean zero) {
        int cols() {
            return in * kernel * kernel;
        }
    }

    static final List<ModuleSpec> MODULES = List.of(
            new ModuleSpec("lora_unet_input_blocks_1_0_in_layers_2", 16, 16, 3, 8, 4, false),
            new ModuleSpec("lora_unet_input_blocks_4_0_skip_connection", 24, 16, 1, 4, 2, false),
            new ModuleSpec("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 24, 24, 1, 4, 2, false),
            new ModuleSpec("lora_te1_text_model_encoder_layers_0_mlp_fc1", 32, 16, 1, 4, 2, false),
            new ModuleSpec("lora_te1_text_model_encoder_layers_11_mlp_fc1", 32, 16, 1, 4, 2, true),
            new ModuleSpec("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 16, 16, 1, 4, 2, false),
            new ModuleSpec("lora_te2_text_model_encoder_layers_0_self_attn_k_proj", 16, 16, 1, 4, 2, false),
            new ModuleSpec("lora_te2_text_model_encoder_layers_0_self_attn_v_proj", 16, 16, 1, 4, 2, false),
            new ModuleSpec("lora_te2_text_model_encoder_layers_0_self_attn_out_proj", 16, 16, 1, 4, 1, false));

    /** The checkpoint rows of each module, q/k/v in the correct order (q = rows 0..15 of in_proj). */
    static Map<String, Target> targets(boolean referenceSwap) {
        Map<String, Target> t = new LinkedHashMap<>();
        t.put("lora_unet_input_blocks_1_0_in_layers_2", new Target(UNET + "input_blocks.1.0.in_layers.2.weight", 0, 16));
        t.put("lora_unet_input_blocks_4_0_skip_connection", new Target(UNET + "input_blocks.4.0.skip_connection.weight", 0, 24));
        t.put("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
                new Target(UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight", 0, 24));
        t.put("lora_te1_text_model_encoder_layers_0_mlp_fc1", new Target(TE1 + "0.mlp.fc1.weight", 0, 32));
        t.put("lora_te1_text_model_encoder_layers_11_mlp_fc1", new Target(TE1 + "11.mlp.fc1.weight", 0, 32));
        String inProj = TE2 + "0.attn.in_proj_weight";
        t.put("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", new Target(inProj, referenceSwap ? 16 : 0, referenceSwap ? 32 : 16));
        t.put("lora_te2_text_model_encoder_layers_0_self_attn_k_proj", new Target(inProj, referenceSwap ? 0 : 16, referenceSwap ? 16 : 32));
        t.put("lora_te2_text_model_encoder_layers_0_self_attn_v_proj", new Target(inProj, 32, 48));
        t.put("lora_te2_text_model_encoder_layers_0_self_attn_out_proj", new Target(TE2 + "0.attn.out_proj.weight", 0, 16));
        return t;
    }

    /** Writes the checkpoint: the module targets, a few weights no LoRA trains, a bias and a VAE weight. */
    static void writeCheckpoint(Path file, long seed) throws IOException {
        SplittableRandom rnd = new SplittableRandom(seed);
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata("modelspec.architecture", "stable-diffusion-xl-v1-base");
        addWeight(w, rnd, UNET + "input_blocks.1.0.in_layers.2.weight", 1, 16, 16, 3, 3);
        addWeight(w, rnd, UNET + "input_blocks.1.0.in_layers.2.bias", 1, 16);
        addWeight(w, rnd, UNET + "input_blocks.4.0.skip_connection.weight", 1, 24, 16, 1, 1);
        addWeight(w, rnd, UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight", 1, 24, 24);
        addWeight(w, rnd, UNET + "time_embed.0.weight", 1, 32, 16);
        addWeight(w, rnd, TE1 + "0.mlp.fc1.weight", 1, 32, 16);
        addWeight(w, rnd, TE1 + "11.mlp.fc1.weight", 1, 32, 16);
        addWeight(w, rnd, TE1 + "0.layer_norm1.weight", 1, 16);
        // in_proj rows: q (16 rows) 30x larger than k, so the q/k pairing matters for the scores
        float[] inProj = values(rnd, 48 * 16, 1 / 4.0);
        for (int i = 0; i < 16 * 16; i++) {
            inProj[i] *= 30;
        }
        w.addFloats(TE2 + "0.attn.in_proj_weight", StDType.F16, new long[] {48, 16}, inProj);
        addWeight(w, rnd, TE2 + "0.attn.out_proj.weight", 1, 16, 16);
        addWeight(w, rnd, "first_stage_model.decoder.conv_in.weight", 1, 8, 4, 3, 3);
        w.write(file);
    }

    private static void addWeight(SafetensorsWriter w, SplittableRandom rnd, String name, double gain, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        double fanIn = shape.length > 1 ? (double) n / shape[0] : 1;
        w.addFloats(name, StDType.F16, shape, values(rnd, (int) n, gain / Math.sqrt(fanIn)));
    }

    static float[] values(SplittableRandom rnd, int n, double rms) {
        float[] x = new float[n];
        double bound = rms * Math.sqrt(3);
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return x;
    }

    /**
     * Writes the LoRA (fp16): down uniform, up with column scales decaying over two orders of magnitude,
     * so every recipe cuts somewhere inside each layer. {@code metadata} may be empty (no __metadata__).
     */
    static void writeLora(Path file, long seed, Map<String, String> metadata, List<ModuleSpec> modules) throws IOException {
        SplittableRandom rnd = new SplittableRandom(seed);
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(metadata);
        for (ModuleSpec m : modules) {
            long[] downShape = m.kernel > 1 || m.name.contains("skip_connection")
                    ? new long[] {m.rank, m.in, m.kernel, m.kernel} : new long[] {m.rank, m.in};
            long[] upShape = downShape.length == 4 ? new long[] {m.out, m.rank, 1, 1} : new long[] {m.out, m.rank};
            float[] down = values(rnd, m.rank * m.cols(), 1 / Math.sqrt(3.0 * m.cols()));
            float[] up = new float[m.out * m.rank];
            if (!m.zero) {
                for (int o = 0; o < m.out; o++) {
                    for (int j = 0; j < m.rank; j++) {
                        double c = 0.05 * Math.pow(300, -(double) j / (m.rank - 1));
                        up[o * m.rank + j] = (float) ((rnd.nextDouble() * 2 - 1) * c);
                    }
                }
            }
            w.addFloats(m.name + ".lora_down.weight", StDType.F16, downShape, down);
            w.addFloats(m.name + ".lora_up.weight", StDType.F16, upShape, up);
            w.addFloats(m.name + ".alpha", StDType.F16, new long[0], new float[] {(float) m.alpha});
        }
        w.write(file);
    }

    /** The test's expectation for one module. */
    record Expected(String name, int out, int cols, int rank, double alpha, double[] s, double frobenius,
                    Oracle.Svd svd) {
        double[] scoresFroCkpt() {
            double[] sc = new double[s.length];
            for (int i = 0; i < s.length; i++) {
                sc[i] = Math.log10(s[i]) - Math.log10(frobenius);
            }
            return sc;
        }
    }

    /** Dense SVDs of every non-zero module and the norms of its checkpoint rows, in double. */
    static List<Expected> expect(Path checkpoint, Path lora, Map<String, Target> targets) {
        List<Expected> out = new ArrayList<>();
        try (SafetensorsFile ck = SafetensorsFile.open(checkpoint); SafetensorsFile lf = SafetensorsFile.open(lora)) {
            for (Map.Entry<String, Target> e : targets.entrySet()) {
                String name = e.getKey();
                if (!lf.contains(name + ".alpha")) {
                    continue;
                }
                Target t = e.getValue();
                long[] us = lf.info(name + ".lora_up.weight").shape();
                long[] ds = lf.info(name + ".lora_down.weight").shape();
                int outRows = (int) us[0];
                int r = (int) ds[0];
                int cols = (int) (lf.info(name + ".lora_down.weight").numel() / r);
                double alpha = Oracle.read(lf, name + ".alpha")[0];
                double[] dw = Oracle.delta(Oracle.read(lf, name + ".lora_up.weight"), Oracle.read(lf, name + ".lora_down.weight"),
                        outRows, r, cols, alpha / r);
                Oracle.Svd svd = Oracle.svd(dw, outRows, cols);
                int m = Math.min(Math.min(outRows, cols), r);
                double[] s = java.util.Arrays.copyOf(svd.s(), m);
                if (s[0] < 1e-6) {
                    continue; // a zero module: dropped
                }
                float[] base = Oracle.read(ck, t.key());
                int baseCols = (int) (ck.info(t.key()).numel() / ck.info(t.key()).shape()[0]);
                double fro = Oracle.frobenius(Oracle.rows(base, baseCols, t.rowFrom(), t.rowTo()));
                out.add(new Expected(name, outRows, cols, r, alpha, s, fro, svd));
            }
        }
        return out;
    }
}
