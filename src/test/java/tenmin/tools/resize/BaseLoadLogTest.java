package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.lora.SdxlKeyMap.Target;
import tenmin.testing.LogLines;

/**
 * The "Loading base weight" lines at -vv come where resize_lora v2024 prints them: its recipes score each
 * live layer (subspace, then spn_ckpt, then fro_ckpt through BaseCheckpoint.get_weights, norms cached by
 * layer name), then print the dim lines (rle_ckpt is a Frobenius norm); get_weights keeps the last weight
 * it loaded, so a second term of the same layer does not load (or log) again.
 */
class BaseLoadLogTest {
    private static Scoring.Layer layer(String name, Target target) {
        Scoring.Layer l = ScoringTest.layer(name, 4, 5, new float[] {1f, 0.5f, 0.25f}, 2f);
        Pairing.Module m = l.module();
        Pairing.Module withBase = new Pairing.Module(m.name(), new Pairing.Base(target, null, 4, 5), null, null, null,
                null, m.rank(), m.out(), m.cols(), m.inputShape(), false);
        return new Scoring.Layer(withBase, l.svd(), 2f, 3f, new float[] {1f, 1f, 1f});
    }

    private static final Scoring.Layer A = layer("lora_unet_a", Target.whole("model.diffusion_model.a.weight"));
    private static final Scoring.Layer B = layer("lora_te2_b",
            new Target("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight", 1, 3));
    private static final String LOAD_A = "DEBUG:root:Loading base weight model.diffusion_model.a.weight for lora_unet_a";
    private static final String LOAD_B = "DEBUG:root:Loading base weight "
            + "('conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight', 1, 3) for lora_te2_b";

    private static List<String> loads(LogLines log) {
        return log.lines().stream().filter(l -> l.contains("Loading base weight") || l.startsWith("DEBUG:root:dim:"))
                .map(l -> l.startsWith("DEBUG:root:dim:") ? "dim " + l.substring(l.lastIndexOf(' ') + 1) : l).toList();
    }

    @Test
    void froCkptLoadsEachLayerOnceWhileScoringThenNeverAgain() {
        BaseLoadLog loads = new BaseLoadLog();
        LogLines log = new LogLines();
        Scoring.apply(Recipe.parse("fro_ckpt=1,thr=-3.55"), List.of(A, B), 2, log, loads);
        Scoring.apply(Recipe.parse("spn_lora=1,thr=-1"), List.of(A, B), 2, log, loads);
        assertEquals(List.of(LOAD_A, LOAD_B, "dim lora_unet_a", "dim lora_te2_b", "dim lora_unet_a", "dim lora_te2_b"),
                loads(log));
    }

    @Test
    void withoutACheckpointTermTheDimLinesLoadTheirNorm() {
        LogLines log = new LogLines();
        Scoring.apply(Recipe.parse("spn_lora=1,thr=-1"), List.of(A, B), 2, log, new BaseLoadLog());
        assertEquals(List.of(LOAD_A, "dim lora_unet_a", LOAD_B, "dim lora_te2_b"), loads(log));
    }

    @Test
    void subspaceLoadsEveryTimeButTheLastWeightIsKept() {
        BaseLoadLog loads = new BaseLoadLog();
        LogLines log = new LogLines();
        // A: subspace loads, spn and fro reuse the kept weight; B likewise; the dim lines know the norms
        Scoring.apply(Recipe.parse("subspace=1,spn_ckpt=1,fro_ckpt=1,thr=-1"), List.of(A, B), 2, log, loads);
        // again: subspace loads A (the kept weight is B's), then B
        Scoring.apply(Recipe.parse("subspace=1,thr=-1"), List.of(A, B), 2, log, loads);
        assertEquals(List.of(LOAD_A, LOAD_B, "dim lora_unet_a", "dim lora_te2_b", LOAD_A, LOAD_B, "dim lora_unet_a",
                "dim lora_te2_b"), loads(log));
    }

    @Test
    void normsKnownFromTheCacheNeverLoad() {
        BaseLoadLog loads = new BaseLoadLog();
        loads.knownFrobenius("lora_unet_a");
        LogLines log = new LogLines();
        Scoring.apply(Recipe.parse("fro_ckpt=1,thr=-3.55"), List.of(A, B), 2, log, loads);
        assertEquals(List.of(LOAD_B, "dim lora_unet_a", "dim lora_te2_b"), loads(log));
    }
}
