package tenmin.tools.resize;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import tenmin.core.PyFormat;
import tenmin.core.Reporter;

/**
 * Scores the singular directions of every layer under one recipe, picks the threshold (given, or from
 * the size target) and the directions each layer keeps (postprocess-spec §2.2, §2.8, §2.9).
 *
 * <p>Arithmetic follows the reference's fp32 tensors: {@code score = log10(S)} in fp32, each term
 * {@code w·log10(reference)} computed in double and subtracted in fp32, the keep test
 * {@code score > thr} (v2024, strict) with {@code thr} rounded to fp32. Only directions on the knife
 * edge can differ (fp32 log10 may differ from torch's by one ulp).
 */
final class Scoring {
    /** The quantiles of the {@code Score quantiles} log line. */
    static final double[] QUANTILES = {0.01, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99};

    private Scoring() {
    }

    /** One decomposed layer with the base-weight quantities recipes may need. */
    record Layer(Pairing.Module module, LowRankSvd svd, float frobenius, float spectral, float[] subspace) {
    }

    /**
     * A recipe's outcome for one LoRA.
     *
     * @param threshold the final threshold as the reference records it (the recipe's double {@code thr},
     *                  or the fp32 value picked by size mode widened to double, or -inf)
     * @param kept      per layer (same order as the input), the indices of the kept directions
     */
    record Outcome(Recipe recipe, double threshold, List<int[]> kept) {
        int keptLayers() {
            int n = 0;
            for (int[] k : kept) {
                n += k.length > 0 ? 1 : 0;
            }
            return n;
        }
    }

    /** The scores of a layer's directions under a recipe, fp32 (see the class comment). */
    static float[] scores(Recipe recipe, Layer layer) {
        LowRankSvd svd = layer.svd();
        int m = svd.m;
        float[] sc = new float[m];
        for (int i = 0; i < m; i++) {
            sc[i] = (float) Math.log10(svd.s[i]);
        }
        if (recipe.rescale() != 1) {
            addAll(sc, (float) Math.log10(recipe.rescale()));
        }
        if (recipe.uses("subspace")) {
            float w = (float) recipe.weight("subspace");
            for (int i = 0; i < m; i++) {
                sc[i] -= w * (float) Math.log10(layer.subspace()[i]);
            }
        }
        if (recipe.uses("spn_ckpt")) {
            addAll(sc, (float) -(recipe.weight("spn_ckpt") * Math.log10(layer.spectral())));
        }
        if (recipe.uses("spn_lora")) {
            // w · torch.log10(S[0]): a product of fp32 tensors in the reference (the checkpoint terms are doubles)
            addAll(sc, -((float) recipe.weight("spn_lora") * (float) Math.log10(svd.s[0])));
        }
        if (recipe.uses("fro_ckpt")) {
            addAll(sc, (float) -(recipe.weight("fro_ckpt") * Math.log10(layer.frobenius())));
        }
        if (recipe.uses("fro_lora")) {
            addAll(sc, -((float) recipe.weight("fro_lora") * (float) Math.log10(norm(svd.s, 1))));
        }
        if (recipe.uses("params")) {
            Pairing.Module mod = layer.module();
            addAll(sc, (float) -(recipe.weight("params") * Math.log10((double) mod.out() + mod.cols())));
        }
        return sc;
    }

    private static void addAll(float[] sc, float term) {
        for (int i = 0; i < sc.length; i++) {
            sc[i] += term;
        }
    }

    /** ‖f·S‖₂ over all entries, fp32 like torch's norm of an fp32 tensor. */
    static float norm(float[] s, float factor) {
        double sum = 0;
        for (float v : s) {
            double x = v * factor;
            sum += x * x;
        }
        return (float) Math.sqrt(sum);
    }

    /**
     * Applies a recipe to the layers of one LoRA: scores, threshold, kept directions. Logs the score
     * quantiles (INFO), the selected threshold in size mode (INFO) and one {@code dim:} line per layer
     * (DEBUG). {@code elementBytes} is the output's bytes per element (size mode's cost).
     */
    static Outcome apply(Recipe recipe, List<Layer> layers, int elementBytes, Reporter reporter) {
        return apply(recipe, layers, elementBytes, reporter, BaseLoadLog.none());
    }

    /** {@link #apply(Recipe, List, int, Reporter)}, logging the reference's base-weight loads through {@code loads}. */
    static Outcome apply(Recipe recipe, List<Layer> layers, int elementBytes, Reporter reporter, BaseLoadLog loads) {
        List<float[]> scores = new ArrayList<>(layers.size());
        int total = 0;
        for (Layer l : layers) {
            loads.score(recipe, l, reporter);
            float[] sc = scores(recipe, l);
            scores.add(sc);
            total += sc.length;
        }
        float[] flat = new float[total];
        long[] cost = new long[total];
        int p = 0;
        for (int li = 0; li < layers.size(); li++) {
            float[] sc = scores.get(li);
            Pairing.Module mod = layers.get(li).module();
            long c = (long) elementBytes * ((long) mod.out() + mod.cols());
            for (float v : sc) {
                flat[p] = v;
                cost[p] = c;
                p++;
            }
        }
        float cut;
        double threshold;
        if (recipe.sizeMode()) {
            cut = sizeThreshold(flat, cost, recipe.targetSize());
            threshold = cut;
            reporter.log(Reporter.Level.INFO, "INFO:root:Selected threshold: " + PyFormat.fixed(cut, 3));
        } else {
            threshold = recipe.threshold();
            cut = (float) threshold;
        }
        List<int[]> kept = new ArrayList<>(layers.size());
        for (int li = 0; li < layers.size(); li++) {
            Layer layer = layers.get(li);
            float[] sc = scores.get(li);
            int[] k = keep(sc, cut);
            kept.add(k);
            if (reporter.enabled(Reporter.Level.DEBUG)) {
                loads.relativeError(layer, reporter);
                reporter.log(Reporter.Level.DEBUG, debugLine(layer, k, recipe.rescale()));
            }
        }
        // the reference prints the quantiles after the per-layer lines (resize_lora's ResizeRecipe.resize_lora)
        if (total > 0 && reporter.enabled(Reporter.Level.INFO)) {
            reporter.log(Reporter.Level.INFO, "INFO:root:Score quantiles: " + quantileText(flat));
        }
        return new Outcome(recipe, threshold, kept);
    }

    /** Indices i with {@code score[i] > cut}, ascending. */
    static int[] keep(float[] score, float cut) {
        int n = 0;
        for (float v : score) {
            n += v > cut ? 1 : 0;
        }
        int[] k = new int[n];
        int j = 0;
        for (int i = 0; i < score.length; i++) {
            if (score[i] > cut) {
                k[j++] = i;
            }
        }
        return k;
    }

    /**
     * Size mode (greedy knapsack, §2.2): directions sorted by score descending, their costs accumulated;
     * the threshold is the score at the first index where the total reaches the target, or -inf when
     * everything fits. With the strict keep test the result stays below the target.
     */
    static float sizeThreshold(float[] flat, long[] cost, double targetMiB) {
        int n = flat.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(flat[b], flat[a])); // stable: ties keep layer order
        double target = targetMiB * (1 << 20);
        long total = 0;
        for (long c : cost) {
            total += c;
        }
        if (!(target < total)) {
            return Float.NEGATIVE_INFINITY; // everything fits
        }
        long cum = 0;
        for (int i = 0; i < n; i++) {
            cum += cost[order[i]];
            if (cum >= target) {
                return flat[order[i]];
            }
        }
        throw new IllegalStateException("unreachable: the total cost exceeds the target");
    }

    /** {@code 0.01:-4.908 0.10:-4.325 ...}: torch.quantile's linear interpolation in fp32. */
    static String quantileText(float[] values) {
        float[] sorted = values.clone();
        Arrays.sort(sorted); // -inf first, as torch.sort
        StringBuilder sb = new StringBuilder();
        for (double q : QUANTILES) {
            if (!sb.isEmpty()) {
                sb.append(' ');
            }
            sb.append(PyFormat.fixed(q, 2)).append(':').append(PyFormat.fixed(quantile(sorted, (float) q), 3));
        }
        return sb.toString();
    }

    /** torch.quantile(sorted, q, interpolation="linear") for ascending fp32 values. */
    static float quantile(float[] sorted, float q) {
        float rank = q * (sorted.length - 1);
        int below = (int) rank;
        int above = (int) Math.ceil(rank);
        float w = rank - below;
        return lerp(sorted[below], sorted[above], w);
    }

    /** torch.lerp for fp32 (the two-sided form that is exact at both ends). */
    static float lerp(float a, float b, float w) {
        return Math.abs(w) < 0.5f ? a + w * (b - a) : b - (b - a) * (1 - w);
    }

    /**
     * {@code dim:  8->6   rle_lora:  0.21% rle_ckpt:  0.02% <name>}: number of singular values
     * ({@code S.shape[0]} = min(out, in·k·k, rank), the rank for every usual layer), kept count, relative
     * error of the discarded part against the LoRA and against the base weight, in percent. The ratios and
     * the {@code 100·} are fp32 as the reference's tensors are ({@code err / norm}, {@code 100. * tensor}).
     */
    static String debugLine(Layer layer, int[] kept, double rescale) {
        float[] s = layer.svd().s;
        float f = (float) rescale;
        boolean[] isKept = new boolean[s.length];
        for (int i : kept) {
            isKept[i] = true;
        }
        double discarded = 0;
        for (int i = 0; i < s.length; i++) {
            if (!isKept[i]) {
                double x = s[i] * f;
                discarded += x * x;
            }
        }
        float e = (float) Math.sqrt(discarded);
        float all = norm(s, f);
        float rleLora = 100f * (e / all);
        float rleCkpt = 100f * (e / layer.frobenius());
        return String.format(Locale.ROOT, "DEBUG:root:dim:%3d->%-3d rle_lora:%6s%% rle_ckpt:%6s%% %s",
                s.length, kept.length, PyFormat.fixed(rleLora, 2), PyFormat.fixed(rleCkpt, 2),
                layer.module().name());
    }
}
