package tenmin.tools;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.core.Reporter.Level;
import tenmin.engine.blas.OpenBlas;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.TensorInfo;
import tenmin.lora.BlockWeights;
import tenmin.lora.DeltaMath;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.lora.SdxlKeyMap;

/**
 * Bakes LoRAs into a checkpoint (postprocess-spec §6.2, as kohya's {@code sdxl_merge_lora.py}):
 * {@code W += weight · ratio · (alpha/r) · up.flatten(1) @ down.flatten(1)}, reshaped to W, in fp32 from the
 * checkpoint's stored values, written back in each tensor's own dtype (rounded once, to nearest even).
 * Text encoder 2's q/k/v modules go into rows {@code [0,C)}, {@code [C,2C)}, {@code [2C,3C)} of
 * {@code attn.in_proj_weight}. Every other tensor (VAE, biases, norms, untouched weights) is copied byte for
 * byte, and the checkpoint's metadata is kept.
 *
 * <p>Streaming: everything is validated from the headers first; then each output tensor is produced while
 * the file is written, read from the memory-mapped checkpoint and released right after, so the
 * checkpoint is never held in memory (peak ≈ the largest merged tensor in fp32).
 */
public final class Merge {
    private Merge() {
    }

    /** What was written. */
    public record Result(Path output, int modules, int weights, int skipped) {
    }

    /** Metadata key listing the merged LoRAs (JSON). */
    public static final String MERGED_KEY = "tenmin_merged_loras";

    /** One module's share of a checkpoint weight: row chunk {@code chunk} of {@code chunks}, times {@code factor}. */
    private record Contribution(LoraModule module, int chunk, int chunks, double factor) {
    }

    public static Result run(MergeConfig cfg, Reporter reporter) {
        if (cfg.loras().isEmpty()) {
            throw new InputException("no LoRA given");
        }
        List<LoraFile> loras = new ArrayList<>();
        try (SafetensorsFile ckpt = SafetensorsFile.open(cfg.checkpoint())) {
            if (LoraFile.looksLikeLora(ckpt)) {
                throw new InputException(cfg.checkpoint() + ": this is a LoRA file; the checkpoint comes first"
                        + " (tenmin merge CHECKPOINT LORA[:WEIGHT]... -o OUT)");
            }
            Map<String, long[]> shapes = new HashMap<>();
            for (String n : ckpt.names()) {
                shapes.put(n, ckpt.info(n).shape());
            }
            SdxlKeyMap map = SdxlKeyMap.of(shapes);
            Map<String, List<Contribution>> byKey = new HashMap<>();
            int modules = 0;
            int skipped = 0;
            for (MergeConfig.LoraSpec spec : cfg.loras()) {
                LoraFile lora = LoraFile.open(spec.path());
                loras.add(lora);
                BlockWeights bw = null;
                if (cfg.blocks() != null) {
                    bw = BlockWeights.resolve(cfg.blocks(), lora.modules().stream().map(LoraModule::name).toList(),
                            cfg.blockOptions());
                    for (String w : bw.warnings()) {
                        reporter.log(Level.WARNING, "warning: " + spec.path() + ": " + w);
                    }
                }
                List<String> unmatched = new ArrayList<>();
                for (LoraModule m : lora.modules()) {
                    SdxlKeyMap.Target target = map.target(m.name());
                    if (target == null) {
                        unmatched.add(m.name());
                        continue;
                    }
                    checkFits(lora, m, target, ckpt.info(target.checkpointKey()));
                    double factor = spec.weight() * (bw == null ? 1 : bw.ratio(m.name()));
                    modules++;
                    if (factor != 0) {
                        byKey.computeIfAbsent(target.checkpointKey(), k -> new ArrayList<>())
                                .add(new Contribution(m, target.chunk(), target.chunks(), factor));
                    }
                }
                if (!lora.looseKeys().isEmpty()) {
                    unmatched.addAll(lora.looseKeys());
                }
                if (!unmatched.isEmpty()) {
                    String list = String.join(", ", unmatched.subList(0, Math.min(5, unmatched.size())))
                            + (unmatched.size() > 5 ? ", ..." : "");
                    if (!cfg.skipUnmatched()) {
                        throw new InputException(spec.path() + ": " + unmatched.size() + " LoRA module(s) have no weight in "
                                + cfg.checkpoint() + ": " + list + " (use --skip-unmatched to merge the rest)");
                    }
                    reporter.log(Level.WARNING, "warning: " + spec.path() + ": skipping " + unmatched.size()
                            + " module(s) without a checkpoint weight: " + list);
                    skipped += unmatched.size();
                }
            }
            Path[] inputs = new Path[cfg.loras().size() + 1];
            inputs[0] = cfg.checkpoint();
            for (int i = 0; i < cfg.loras().size(); i++) {
                inputs[i + 1] = cfg.loras().get(i).path();
            }
            Outputs.requireNotAnInput(cfg.output(), inputs);
            write(ckpt, byKey, cfg, reporter);
            return new Result(cfg.output(), modules, byKey.size(), skipped);
        } finally {
            for (LoraFile l : loras) {
                l.close();
            }
        }
    }

    /** Checks that module {@code m}'s delta has the shape of its (chunk of the) checkpoint weight. */
    private static void checkFits(LoraFile lora, LoraModule m, SdxlKeyMap.Target target, TensorInfo w) {
        m.requireSupported();
        if (m.hasDora()) {
            throw new InputException(lora.path() + ": module " + m.name() + " is DoRA (dora_scale); merging DoRA"
                    + " modules is not supported");
        }
        if (!w.dtype().isFloat()) {
            throw new InputException(target.checkpointKey() + " is " + w.dtype() + ", not a float weight");
        }
        long[] shape = w.shape();
        long cols = 1;
        for (int i = 1; i < shape.length; i++) {
            cols *= shape[i];
        }
        boolean kernelOk = m.kernelHeight() * m.kernelWidth() == 1
                || shape.length == 4 && shape[2] == m.kernelHeight() && shape[3] == m.kernelWidth();
        if (shape[0] % target.chunks() != 0 || m.outFeatures() != shape[0] / target.chunks() || m.columns() != cols
                || !kernelOk) {
            throw new InputException(lora.path() + ": module " + m.name() + " has delta shape "
                    + Arrays.toString(m.deltaShape()) + " but checkpoint weight " + target + " has shape "
                    + Arrays.toString(shape) + " (a LoRA for another model?)");
        }
    }

    private static void write(SafetensorsFile ckpt, Map<String, List<Contribution>> byKey, MergeConfig cfg,
                              Reporter reporter) {
        SafetensorsWriter writer = new SafetensorsWriter();
        Map<String, String> metadata = new LinkedHashMap<>(ckpt.metadata());
        metadata.put(MERGED_KEY, mergedJson(cfg));
        writer.metadata(metadata);
        long total = 0;
        for (String n : ckpt.names()) {
            total += ckpt.info(n).sizeBytes();
        }
        OpenBlas blas = OpenBlas.find().blas(); // null: the Java kernel
        float[][] scratch = {new float[0]};    // the fp32 weight being merged, reused (tensors are written one by one)
        try (Reporter.Progress progress = reporter.progress("merge", total)) {
            for (String name : ckpt.names()) {
                TensorInfo t = ckpt.info(name);
                List<Contribution> cs = byKey.get(name);
                writer.add(name, t.dtype(), t.shape(), out -> {
                    if (cs == null) {
                        SafetensorsWriter.writeSegment(out, ckpt.segment(name));
                    } else {
                        if (scratch[0].length < t.numel()) {
                            scratch[0] = new float[(int) t.numel()];
                        }
                        writeMerged(out, ckpt, t, cs, scratch[0], blas);
                    }
                    ckpt.release(name);
                    progress.advance(t.sizeBytes());
                });
            }
            Outputs.write(writer, cfg.output());
        }
    }

    /**
     * W (fp32, in the start of {@code w}) += Σ factor·(alpha/r)·up@down into the right rows (OpenBLAS when
     * {@code blas} is not null), then written in W's dtype.
     */
    private static void writeMerged(OutputStream out, SafetensorsFile ckpt, TensorInfo t, List<Contribution> cs,
                                    float[] w, OpenBlas blas) throws IOException {
        int n = (int) t.numel();
        ckpt.readFloats(t.name(), w, 0); // (O, I·Kh·Kw), or (3C, C) for a fused q/k/v weight
        int cols = (int) (n / t.dim(0));
        for (Contribution c : cs) {
            LoraModule m = c.module();
            int rows = (int) m.outFeatures();
            DeltaMath.addDelta(blas, w, c.chunk() * rows, m.readUp(), m.readDown(), rows, m.rank(), cols,
                    (float) (c.factor() * m.scale()));
        }
        SafetensorsWriter.writeFloats(out, w, 0, n, t.dtype());
    }

    private static String mergedJson(MergeConfig cfg) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (MergeConfig.LoraSpec s : cfg.loras()) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("file", s.path().getFileName().toString());
            e.put("weight", s.weight());
            if (cfg.blocks() != null) {
                e.put("blocks", cfg.blocks());
            }
            list.add(e);
        }
        try {
            return new ObjectMapper().writeValueAsString(list);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
