package tenmin.tools;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.PyFormat;
import tenmin.core.PyText;
import tenmin.core.Reporter.Level;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsWriter;
import tenmin.lora.BlockLayout;
import tenmin.lora.BlockLayout.Block;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.lora.PythonFloat;
import tenmin.lora.TensorScaling;
import tenmin.lora.TensorScaling.Rounding;

/**
 * chop_blocks.py (postprocess-spec §3, version c1 output format as in the guide): prints a LoRA's block
 * layout, and with a vector removes the blocks weighted 0 and scales the others.
 *
 * <p>Vector {@code g,w1,...,wn}: g is a global multiplier on the UNet block weights only (the text
 * encoders and other keys pass through unchanged); {@code w_i} weighs block i of the layout. A block whose
 * effective weight {@code |g·w_i| < 1e-6} is removed (its keys are dropped, not zeroed); weight 1 (within
 * 1e-6) copies its bytes verbatim. A fractional weight multiplies each module's {@code lora_up.weight} by
 * {@code g·w_i} (so ΔW scales linearly), or with {@code compat} multiplies every tensor of the block (alpha,
 * up, down, dora_scale) with numpy's rounding, which scales ΔW by the cube as the reference does.
 * Unlike chop_blocks c1 the input metadata is kept and {@code block_vector_string} added. With
 * {@code compat}, the weighted layout is also left out at DEBUG level (chop_blocks' inverted level test).
 */
public final class Chop {
    private static final double EPS = 1e-6;

    private Chop() {
    }

    /** What a filtering run wrote. */
    public record Result(Path output, int unetKeysKept, int passThrough) {
    }

    /** The analysis lines for {@code input} (spec §3.3, c1 format, each starting with {@code INFO: }). */
    public static List<String> analysis(Path input) {
        try (LoraFile lora = LoraFile.open(input)) {
            return BlockLayout.of(lora).analysisLines();
        }
    }

    /** Filters {@code cfg.input()} with {@code cfg.vector()}, logging the weighted layout; see class comment. */
    public static Result run(ChopConfig cfg, Reporter reporter) {
        if (cfg.vector() == null) {
            throw new IllegalArgumentException("no vector: use analysis()");
        }
        try (LoraFile lora = LoraFile.open(cfg.input())) {
            BlockLayout layout = BlockLayout.of(lora);
            double[] values = parseVector(cfg.vector(), layout.blocks().size());
            double g = values[0];
            Path out = cfg.output() != null ? cfg.output() : Outputs.sibling(cfg.input(), "-chop");
            Outputs.requireNotAnInput(out, cfg.input());

            // chop_blocks prints the weighted layout only when its level is INFO or above
            // (getEffectiveLevel() >= INFO), so its -v (DEBUG) shows none: reproduced with compat only
            boolean layoutShown = cfg.compat() ? !reporter.enabled(Level.DEBUG) : true;
            if (layoutShown && reporter.enabled(Level.INFO)) {
                reporter.log(Level.INFO, "INFO: Blocks layout:");
                for (int i = 0; i < layout.blocks().size(); i++) {
                    double w = values[i + 1];
                    String tail = Math.abs(w) <= EPS ? " (removed)"
                            : " weight=" + (Math.abs(w - 1) < EPS ? "1" : PyFormat.repr(w));
                    reporter.log(Level.INFO, "INFO: " + BlockLayout.layoutLine(i, layout.blocks().get(i)) + tail);
                }
            }

            SafetensorsWriter writer = new SafetensorsWriter();
            Map<String, String> metadata = new LinkedHashMap<>(lora.metadata());
            metadata.put("block_vector_string", cfg.vector());
            writer.metadata(metadata);
            int kept = 0;
            for (int i = 0; i < layout.blocks().size(); i++) {
                Block block = layout.blocks().get(i);
                double w = values[i + 1] * g;
                if (Math.abs(w) < EPS) {
                    continue;
                }
                kept += block.keys().size();
                if (Math.abs(w - 1) <= EPS) {
                    for (String key : block.keys()) {
                        writer.copy(lora.file(), key);
                    }
                } else if (cfg.compat()) {
                    for (String key : block.keys()) {
                        TensorScaling.addScaled(writer, lora.file(), key, w, Rounding.NUMPY);
                    }
                } else {
                    addLinear(writer, lora, block, w, reporter);
                }
            }
            reporter.log(Level.INFO, "INFO: Keeping " + kept + " keys from the UNet, " + layout.passThrough().size()
                    + " passing through (text encoders)");
            for (String key : layout.passThrough()) {
                writer.copy(lora.file(), key);
            }
            Outputs.write(writer, out);
            reporter.log(Level.INFO, "INFO: Filtered LoRA saved to " + PyText.path(out));
            return new Result(out, kept, layout.passThrough().size());
        }
    }

    /** Scales each module's lora_up by w (ΔW ∝ w); keys outside a module are refused. */
    private static void addLinear(SafetensorsWriter writer, LoraFile lora, Block block, double w, Reporter reporter) {
        java.util.Set<String> modules = new java.util.TreeSet<>();
        for (String key : block.keys()) {
            modules.add(key.substring(0, Math.max(0, key.indexOf('.'))));
        }
        for (String name : modules) {
            LoraModule m = lora.module(name);
            if (m == null) {
                throw new InputException(lora.path() + ": cannot scale \"" + name + "\": not a module tensor");
            }
            TensorScaling.addScaledModule(writer, lora, m, w, reporter);
        }
    }

    /**
     * Parses {@code g,w1,...,wn} as chop_blocks does ({@code float()} of each comma item) and checks that
     * there is one weight per block; every value must be finite.
     */
    static double[] parseVector(String vector, int blocks) {
        String[] items = vector.split(",", -1);
        double[] values = new double[items.length];
        for (int i = 0; i < items.length; i++) {
            Double v = PythonFloat.parseFinite(items[i]);
            if (v == null) {
                throw new InputException("vector \"" + vector + "\": item " + (i + 1) + " \"" + items[i].strip()
                        + "\" is not a finite number");
            }
            values[i] = v;
        }
        int weights = values.length - 1;
        if (weights != blocks) {
            throw new InputException("vector has " + weights + " block weight" + (weights == 1 ? "" : "s")
                    + " after the global multiplier, expected " + blocks + " (" + (blocks + 1)
                    + " numbers in all, one per block of the layout; run chop without a vector to see it)");
        }
        return values;
    }
}
