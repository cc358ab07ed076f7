package tenmin.tools;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.core.Reporter.Level;
import tenmin.formats.SafetensorsWriter;
import tenmin.lora.BlockWeights;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.lora.TensorScaling;

/**
 * Applies a block-weight vector to a LoRA file and writes a new LoRA (Inspire-Pack or A1111 fixed-slot
 * semantics, {@link BlockWeights}): each module's ratio r scales its delta linearly. r = 0 drops the
 * module, r = 1 copies its bytes, any other r multiplies {@code lora_up.weight} by r (alpha and
 * {@code lora_down} unchanged), so loading the result at strength s equals loading the input through
 * the block-weight node at strength s.
 */
public final class Blocks {
    private Blocks() {
    }

    /** What was written. */
    public record Result(Path output, BlockWeights weights, int kept, int scaled, int dropped) {
    }

    /** Metadata key holding the raw vector (as chop writes it). */
    public static final String VECTOR_KEY = "block_vector_string";
    /** Metadata key holding the resolved vector and options (JSON). */
    public static final String PARAMS_KEY = "block_weight_params";

    public static Result run(BlocksConfig cfg, Reporter reporter) {
        try (LoraFile lora = LoraFile.open(cfg.input())) {
            List<LoraModule> modules = lora.modules();
            BlockWeights weights = BlockWeights.resolve(cfg.vector(), modules.stream().map(LoraModule::name).toList(),
                    cfg.options());
            for (String w : weights.warnings()) {
                reporter.log(Level.WARNING, "warning: " + w);
            }
            Path out = cfg.output() != null ? cfg.output() : Outputs.sibling(cfg.input(), "-lbw");
            Outputs.requireNotAnInput(out, cfg.input());

            SafetensorsWriter writer = new SafetensorsWriter();
            Map<String, String> metadata = new LinkedHashMap<>(lora.metadata());
            metadata.put(VECTOR_KEY, cfg.vector());
            metadata.put(PARAMS_KEY, paramsJson(weights, cfg.options()));
            writer.metadata(metadata);
            int kept = 0;
            int scaled = 0;
            int dropped = 0;
            for (LoraModule m : modules) {
                double r = weights.ratio(m.name());
                if (r == 0) {
                    dropped++;
                    continue;
                }
                kept++;
                if (r == 1) {
                    m.tensorKeys().forEach(k -> writer.copy(lora.file(), k));
                    continue;
                }
                TensorScaling.addScaledModule(writer, lora, m, r, reporter);
                scaled++;
            }
            if (kept == 0) {
                throw new InputException("block vector \"" + cfg.vector() + "\" gives every module of " + cfg.input()
                        + " ratio 0: nothing to write");
            }
            for (String k : lora.looseKeys()) {
                writer.copy(lora.file(), k);
            }
            Outputs.write(writer, out);
            return new Result(out, weights, kept, scaled, dropped);
        }
    }

    private static String paramsJson(BlockWeights w, BlockWeights.Options o) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("format", w.format() == BlockWeights.Format.LBW ? "lbw" + w.entries().size() : "inspire");
        p.put("populated_vector", w.populated());
        p.put("inverse", o.inverse());
        p.put("seed", o.seed());
        p.put("A", o.a());
        p.put("B", o.b());
        if (o.compat()) {
            p.put("compat", true);
        }
        try {
            return new ObjectMapper().writeValueAsString(p);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
