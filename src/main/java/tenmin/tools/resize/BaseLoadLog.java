package tenmin.tools.resize;

import java.util.HashSet;
import java.util.Set;

import tenmin.core.Reporter;

/**
 * resize_lora's {@code DEBUG:root:Loading base weight <key> for <layer>} lines, at the places and in the
 * order the reference prints them (postprocess-spec §2.8; resize_lora v2024 {@code BaseCheckpoint}): a base
 * weight is "loaded" while a recipe scores a layer, for its subspace term (always), its spectral norm and
 * its Frobenius norm (each the first time for that layer: the norms are cached by layer name, in the norms
 * cache file and for the rest of the run), and at {@code -vv} for the {@code rle_ckpt} of the {@code dim:}
 * line; consecutive loads of the same layer print once (the reference keeps the last weight it loaded).
 * All-zero layers are never scored, so they never load. tenmin reads the norms earlier and in parallel;
 * only the log follows the reference's order. One instance lives for a whole run (every LoRA of it), as the
 * reference's checkpoint object does.
 */
final class BaseLoadLog {
    private final Set<String> frobenius = new HashSet<>();
    private final Set<String> spectral = new HashSet<>();
    private final boolean silent;
    private String last;

    BaseLoadLog() {
        this(false);
    }

    private BaseLoadLog(boolean silent) {
        this.silent = silent;
    }

    /** A log for which every norm is known: it prints nothing (scoring on its own, as in unit tests). */
    static BaseLoadLog none() {
        return new BaseLoadLog(true);
    }

    /** The Frobenius norm of {@code layer} is known without loading (norms cache, or an earlier LoRA). */
    void knownFrobenius(String layer) {
        frobenius.add(layer);
    }

    /** The spectral norm of {@code layer} is known without loading. */
    void knownSpectral(String layer) {
        spectral.add(layer);
    }

    /** The loads of scoring {@code l} with {@code recipe}: subspace, then spn_ckpt, then fro_ckpt. */
    void score(Recipe recipe, Scoring.Layer l, Reporter reporter) {
        if (!reporter.enabled(Reporter.Level.DEBUG)) {
            return;
        }
        String name = l.module().name();
        if (recipe.uses("subspace")) {
            load(l, reporter);
        }
        if (recipe.uses("spn_ckpt") && spectral.add(name)) {
            load(l, reporter);
        }
        if (recipe.uses("fro_ckpt") && frobenius.add(name)) {
            load(l, reporter);
        }
    }

    /** The load of the {@code dim:} line's rle_ckpt (a Frobenius norm) of {@code l}. */
    void relativeError(Scoring.Layer l, Reporter reporter) {
        if (reporter.enabled(Reporter.Level.DEBUG) && frobenius.add(l.module().name())) {
            load(l, reporter);
        }
    }

    private void load(Scoring.Layer l, Reporter reporter) {
        String name = l.module().name();
        if (!silent && !name.equals(last)) {
            reporter.log(Reporter.Level.DEBUG, "DEBUG:root:Loading base weight "
                    + Pairing.baseLabel(l.module().base().target()) + " for " + name);
            last = name;
        }
    }
}
