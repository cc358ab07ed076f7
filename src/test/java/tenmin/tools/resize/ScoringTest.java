package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Locale;

import org.junit.jupiter.api.Test;

import tenmin.core.Reporter;
import tenmin.testing.LogLines;

/** Scores, thresholds and log lines worked out by hand (postprocess-spec §2.2, §2.8). */
class ScoringTest {

    /**
     * A layer whose delta up·down·(alpha/r) has exactly the singular values {@code s}: up = diag(s) padded
     * with zero rows, down = the first rows of the identity, alpha = r.
     */
    static Scoring.Layer layer(String name, int out, int cols, float[] s, float frobenius) {
        int r = s.length;
        float[] up = new float[out * r];
        float[] down = new float[r * cols];
        for (int i = 0; i < r; i++) {
            up[i * r + i] = s[i];
            down[i * cols + i] = 1;
        }
        LowRankSvd svd = LowRankSvd.of(up, out, r, down, cols, 1.0);
        Pairing.Module m = new Pairing.Module(name, null, null, null, null, null, r, out, cols, new long[] {cols}, false);
        return new Scoring.Layer(m, svd, frobenius, Float.NaN, null);
    }

    @Test
    void keepsDirectionsAboveThresholdRelativeToTheCheckpointNorm() {
        // scores log10(S / 2): -1.30, -2.30, -3.30
        Scoring.Layer l = layer("a", 4, 5, new float[] {0.1f, 0.01f, 0.001f}, 2f);
        for (double[] c : new double[][] {{-1.0, 0}, {-2.5, 2}, {-3.55, 3}, {-1.5, 1}}) {
            Scoring.Outcome o = Scoring.apply(Recipe.parse("fro_ckpt=1,thr=" + c[0]), List.of(l), 2, Reporter.SILENT);
            assertEquals((int) c[1], o.kept().get(0).length, "thr " + c[0]);
        }
    }

    @Test
    void theKeepTestIsStrict() {
        // S = 1, ‖W‖ = 1: the score is exactly 0
        Scoring.Layer l = layer("a", 3, 3, new float[] {1f}, 1f);
        assertEquals(0, Scoring.apply(Recipe.parse("fro_ckpt,thr=0"), List.of(l), 2, Reporter.SILENT).kept().get(0).length);
        assertEquals(1, Scoring.apply(Recipe.parse("fro_ckpt,thr=-0.0001"), List.of(l), 2, Reporter.SILENT).kept().get(0).length);
    }

    @Test
    void combinesWeightedTerms() {
        // fro_ckpt=1,spn_lora=1 normalises to 0.5 each: score = log10 S - 0.5 log10 ‖W‖ - 0.5 log10 S_0
        // = log10 S - 1 - 0.30103
        Scoring.Layer l = layer("a", 4, 4, new float[] {4f, 1f, 0.25f}, 100f);
        float[] sc = Scoring.scores(Recipe.parse("fro_ckpt,spn_lora,thr=0"), l);
        assertArrayEquals(new float[] {-0.69897f, -1.30103f, -1.90309f}, sc, 2e-6f);
        // params: log10(out + cols) = log10(8); rescale adds log10(rescale)
        float[] p = Scoring.scores(Recipe.parse("params,rescale=10,thr=0"), l);
        assertArrayEquals(new float[] {(float) (Math.log10(4) + 1 - Math.log10(8)), (float) (1 - Math.log10(8)),
                (float) (Math.log10(0.25) + 1 - Math.log10(8))}, p, 2e-6f);
        // fro_lora: ‖S‖ = sqrt(16 + 1 + 1/16)
        float[] f = Scoring.scores(Recipe.parse("fro_lora,thr=0"), l);
        assertEquals((float) Math.log10(4 / Math.sqrt(17.0625)), f[0], 2e-6f);
    }

    @Test
    void sizeModePicksTheScoreWhereTheCumulativeCostReachesTheTarget() {
        // spn_lora=1: scores log10(S_i / S_0). Costs per direction (fp16): 2·(4+5) = 18 and 2·(10+6) = 32.
        Scoring.Layer a = layer("a", 4, 5, new float[] {1f, 0.5f, 0.25f}, 1f); // 0, -0.301, -0.602
        Scoring.Layer b = layer("b", 10, 6, new float[] {2f, 0.2f}, 1f);       // 0, -1
        // sorted: 0 (a,18) 0 (b,32) -0.301 (18) -0.602 (18) -1 (32); cumulative 18 50 68 86 118
        double mib = 1 << 20;
        Scoring.Outcome o = Scoring.apply(Recipe.parse("spn_lora,size=" + 60 / mib), List.of(a, b), 2, Reporter.SILENT);
        assertEquals((float) Math.log10(0.5), (float) o.threshold());
        assertEquals(1, o.kept().get(0).length);
        assertEquals(1, o.kept().get(1).length); // 50 bytes <= 60
        o = Scoring.apply(Recipe.parse("spn_lora,size=" + 90 / mib), List.of(a, b), 2, Reporter.SILENT);
        assertEquals(-1f, (float) o.threshold()); // log10(0.2 / 2)
        assertEquals(3, o.kept().get(0).length); // 86 bytes
        assertEquals(1, o.kept().get(1).length);
        o = Scoring.apply(Recipe.parse("spn_lora,size=" + 118 / mib), List.of(a, b), 2, Reporter.SILENT);
        assertEquals(Double.NEGATIVE_INFINITY, o.threshold());
        assertEquals(3, o.kept().get(0).length);
        assertEquals(2, o.kept().get(1).length);
        // fp32 output doubles the cost: 36 72 ...
        o = Scoring.apply(Recipe.parse("spn_lora,size=" + 60 / mib), List.of(a, b), 4, Reporter.SILENT);
        assertEquals(0f, (float) o.threshold());
    }

    @Test
    void quantilesInterpolateLinearly() {
        float[] v = {-4f, -1f, -3.5f, -2.25f, 0.333f, -0.125f, -3f, -1.5f, -2f, -5f, -0.75f};
        float[] sorted = v.clone();
        java.util.Arrays.sort(sorted);
        StringBuilder expected = new StringBuilder();
        for (double q : new double[] {0.01, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99}) {
            double pos = q * (sorted.length - 1);
            int lo = (int) Math.floor(pos);
            int hi = (int) Math.ceil(pos);
            double val = sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
            expected.append(expected.isEmpty() ? "" : " ").append(String.format(Locale.ROOT, "%.2f:%.3f", q, val));
        }
        assertEquals(expected.toString(), Scoring.quantileText(v));
        assertEquals("0.01:-4.900 0.10:-4.000 0.25:-3.250 0.50:-2.000 0.75:-0.875 0.90:-0.125 0.99:0.287",
                Scoring.quantileText(v));
    }

    @Test
    void logsInTheReferenceFormat() {
        Scoring.Layer a = layer("lora_unet_x", 4, 5, new float[] {1f, 0.5f, 0.25f}, 2f);
        LogLines log = new LogLines();
        Scoring.apply(Recipe.parse("spn_lora,thr=-0.5"), List.of(a), 2, log);
        // e = 0.25, ‖S‖ = sqrt(1.3125): rle_lora 21.82 %, rle_ckpt 100·0.25/2 = 12.50 %
        // resize_lora's order: per-layer lines first, then the quantiles
        assertEquals(List.of("DEBUG:root:dim:  3->2   rle_lora: 21.82% rle_ckpt: 12.50% lora_unet_x",
                "INFO:root:Score quantiles: 0.01:-0.596 0.10:-0.542 0.25:-0.452 0.50:-0.301 0.75:-0.151"
                        + " 0.90:-0.060 0.99:-0.006"), log.lines());
        log = new LogLines();
        Scoring.apply(Recipe.parse("spn_lora,size=1"), List.of(a), 2, log); // everything fits
        assertEquals("INFO:root:Selected threshold: -inf", log.lines().get(0));
        log = new LogLines();
        Scoring.apply(Recipe.parse("spn_lora,size=" + 20.0 / (1 << 20)), List.of(a), 2, log);
        // size mode: the selected threshold comes first, then the layers, then the quantiles
        assertEquals("INFO:root:Selected threshold: -0.301", log.lines().get(0));
        assertEquals("DEBUG:root:dim:  3->1   rle_lora: 48.80% rle_ckpt: 27.95% lora_unet_x", log.lines().get(1));
        assertTrue(log.lines().get(2).startsWith("INFO:root:Score quantiles: "), log.lines().toString());
        assertEquals(3, log.lines().size());
    }

    @Test
    void dimCountsTheSingularValuesNotTheStoredRank() {
        // rank 3 on a 2 x 4 layer: up = [[1,0,0],[0,0.5,0]], down = first 3 rows of I(4); S.shape[0] = min(2, 4, 3) = 2
        float[] up = {1f, 0, 0, 0, 0.5f, 0};
        float[] down = new float[3 * 4];
        for (int i = 0; i < 3; i++) {
            down[i * 4 + i] = 1;
        }
        LowRankSvd svd = LowRankSvd.of(up, 2, 3, down, 4, 1.0);
        Pairing.Module m = new Pairing.Module("lora_unet_y", null, null, null, null, null, 3, 2, 4, new long[] {4}, false);
        Scoring.Layer l = new Scoring.Layer(m, svd, 5f, Float.NaN, null);
        LogLines log = new LogLines();
        Scoring.apply(Recipe.parse("spn_lora,thr=-0.5"), List.of(l), 2, log);
        // scores 0 and log10(0.5) = -0.301, both above -0.5: nothing discarded
        assertEquals("DEBUG:root:dim:  2->2   rle_lora:  0.00% rle_ckpt:  0.00% lora_unet_y", log.lines().get(0));
    }
}
