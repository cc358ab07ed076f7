package tenmin.train.data;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Every dataset image placed in its bucket (trainer-spec §3.4–3.5; kohya {@code BaseDataset.make_buckets}):
 * the bucket list, each image's assignment, and per bucket the entries (image indices, each repeated
 * {@code repeats} times) that {@link EpochPlanner} batches. Also the numbers kohya records:
 * per-bucket counts and the mean |aspect-ratio error| over images ({@code ss_bucket_info}).
 *
 * @param buckets     the bucket list (kohya's order: sorted by width, then height)
 * @param assignments per dataset item, where it goes
 * @param entries     per bucket (same order as {@code buckets}), dataset item indices with repeats
 */
public record BucketPlan(List<Buckets.Reso> buckets, List<Buckets.Assignment> assignments, List<int[]> entries) {

    /**
     * Places the images of {@code ds}.
     *
     * @param enableBucket    aspect-ratio buckets; otherwise one bucket of {@code width x height}
     * @param noUpscale       kohya's {@code --bucket_no_upscale} rule
     */
    public static BucketPlan of(DreamBoothDataset ds, int width, int height, boolean enableBucket, int minReso,
                                int maxReso, int steps, boolean noUpscale) {
        List<Buckets.Assignment> assigned = new ArrayList<>();
        List<Buckets.Reso> buckets;
        if (enableBucket && noUpscale) {
            TreeSet<Buckets.Reso> used = new TreeSet<>();
            for (DreamBoothDataset.Item it : ds.items()) {
                Buckets.Assignment a = Buckets.selectNoUpscale(it.width(), it.height(), (long) width * height, steps);
                assigned.add(a);
                used.add(a.bucket());
            }
            buckets = List.copyOf(used);
        } else {
            buckets = enableBucket ? Buckets.makeResolutions(width, height, minReso, maxReso, steps)
                    : List.of(new Buckets.Reso(width, height));
            for (DreamBoothDataset.Item it : ds.items()) {
                assigned.add(Buckets.select(buckets, it.width(), it.height()));
            }
        }
        Map<Buckets.Reso, List<Integer>> byBucket = new LinkedHashMap<>();
        for (Buckets.Reso r : buckets) {
            byBucket.put(r, new ArrayList<>());
        }
        for (int i = 0; i < assigned.size(); i++) {
            int repeats = ds.items().get(i).repeats();
            List<Integer> list = byBucket.get(assigned.get(i).bucket());
            for (int r = 0; r < repeats; r++) {
                list.add(i);
            }
        }
        List<int[]> entries = new ArrayList<>();
        for (List<Integer> l : byBucket.values()) {
            entries.add(l.stream().mapToInt(Integer::intValue).toArray());
        }
        return new BucketPlan(buckets, List.copyOf(assigned), List.copyOf(entries));
    }

    /**
     * The plans of several datasets as one, over their items concatenated in order ({@link DreamBoothDataset#concat}):
     * every bucket kept, so two datasets with the same resolution keep apart buckets, and every entry moved past the
     * items of the plans before it.
     */
    public static BucketPlan concat(List<BucketPlan> plans) {
        List<Buckets.Reso> buckets = new ArrayList<>();
        List<Buckets.Assignment> assigned = new ArrayList<>();
        List<int[]> entries = new ArrayList<>();
        for (BucketPlan p : plans) {
            int offset = assigned.size();
            buckets.addAll(p.buckets);
            assigned.addAll(p.assignments);
            for (int[] e : p.entries) {
                int[] moved = new int[e.length];
                for (int i = 0; i < e.length; i++) {
                    moved[i] = e[i] + offset;
                }
                entries.add(moved);
            }
        }
        return new BucketPlan(List.copyOf(buckets), List.copyOf(assigned), List.copyOf(entries));
    }

    /** Entries per bucket (images × repeats), for {@code ss_bucket_info}. */
    public Map<Buckets.Reso, Integer> counts() {
        Map<Buckets.Reso, Integer> m = new LinkedHashMap<>();
        for (int b = 0; b < buckets.size(); b++) {
            m.put(buckets.get(b), entries.get(b).length);
        }
        return m;
    }

    /**
     * Mean |bucket AR − image AR| over images (each image once), summed as the reference's {@code np.mean}
     * sums a float64 array (numpy's pairwise summation), so the recorded value matches to the last digit.
     */
    public double meanArError() {
        double[] errors = new double[assignments.size()];
        for (int i = 0; i < errors.length; i++) {
            errors[i] = Math.abs(assignments.get(i).arError());
        }
        return errors.length == 0 ? 0 : (0.0 + numpyPairwiseSum(errors, 0, errors.length)) / errors.length;
    }

    /**
     * numpy's {@code pairwise_sum} for float64: plain loop below 8 values, eight interleaved partial sums up to
     * 128, otherwise split in two halves (the first a multiple of 8 long).
     */
    static double numpyPairwiseSum(double[] a, int from, int n) {
        if (n < 8) {
            double res = 0.0;
            for (int i = 0; i < n; i++) {
                res += a[from + i];
            }
            return res;
        }
        if (n <= 128) {
            double[] r = new double[8];
            System.arraycopy(a, from, r, 0, 8);
            int i = 8;
            for (; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += a[from + i + j];
                }
            }
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                res += a[from + i];
            }
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return numpyPairwiseSum(a, from, n2) + numpyPairwiseSum(a, from + n2, n - n2);
    }

    /** Only the buckets that hold entries, with their entries (what the epoch planner needs). */
    public List<int[]> nonEmptyEntries() {
        List<int[]> out = new ArrayList<>();
        for (int[] e : entries) {
            if (e.length > 0) {
                out.add(e);
            }
        }
        return out;
    }
}
