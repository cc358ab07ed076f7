package tenmin.train.data;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

/**
 * Aspect-ratio buckets (trainer-spec §3.3–3.4; kohya {@code make_bucket_resolutions},
 * {@code BucketManager.select_bucket}, {@code get_crop_ltrb}).
 */
public final class Buckets {
    private Buckets() {
    }

    /** A bucket's width and height in pixels. */
    public record Reso(int width, int height) implements Comparable<Reso> {
        public double aspect() {
            return (double) width / height;
        }

        @Override
        public int compareTo(Reso o) {
            return width != o.width ? Integer.compare(width, o.width) : Integer.compare(height, o.height);
        }
    }

    /**
     * kohya's {@code make_bucket_resolutions(max_reso, min_size, max_size, divisible)}: the square of the
     * target area, then for every width step the largest height within the area (capped at maxSize), and
     * its transpose; sorted by (w, h). 81 buckets for (1024,1024), 256, 2048, 32.
     */
    public static List<Reso> makeResolutions(int maxW, int maxH, int minSize, int maxSize, int divisible) {
        long maxArea = (long) maxW * maxH;
        int lo = minSize / divisible * divisible;
        int hi = maxSize / divisible * divisible;
        TreeSet<Reso> set = new TreeSet<>();
        int side = (int) (Math.sqrt(maxArea) / divisible) * divisible;
        set.add(new Reso(side, side));
        for (int w = lo; w <= hi; w += divisible) {
            int h = (int) Math.min(hi, (maxArea / w) / divisible * divisible);
            if (h >= lo) {
                set.add(new Reso(w, h));
                set.add(new Reso(h, w));
            }
        }
        return List.copyOf(set);
    }

    /** Where one image goes: its bucket, the size it is resized to before the centre crop, and the AR error. */
    public record Assignment(Reso bucket, int resizedWidth, int resizedHeight, double arError) {
    }

    /** Nearest-aspect selection among predefined buckets (upscaling allowed). */
    public static Assignment select(List<Reso> buckets, int width, int height) {
        Reso exact = new Reso(width, height);
        double ar = (double) width / height;
        Reso best = null;
        if (buckets.contains(exact)) {
            best = exact;
        } else {
            double bestErr = Double.POSITIVE_INFINITY;
            for (Reso r : buckets) {
                double e = Math.abs(r.aspect() - ar);
                if (e < bestErr) { // ties: the first in (w, h) order, like numpy argmin
                    bestErr = e;
                    best = r;
                }
            }
        }
        double scale = ar > best.aspect() ? (double) best.height() / height : (double) best.width() / width;
        int rw = (int) (width * scale + 0.5);
        int rh = (int) (height * scale + 0.5);
        return new Assignment(best, rw, rh, best.aspect() - ar);
    }

    /**
     * kohya's {@code --bucket_no_upscale} rule: images larger than the target area are shrunk to it (rounded
     * to the step where the aspect ratio suffers least), smaller ones keep their size; the bucket is the
     * size rounded down to the step.
     */
    public static Assignment selectNoUpscale(int width, int height, long maxArea, int steps) {
        double ar = (double) width / height;
        int rw;
        int rh;
        if ((long) width * height > maxArea) {
            double w = Math.sqrt(maxArea * ar);
            double h = maxArea / w;
            int bw = roundToSteps(w, steps);
            int bhInW = roundToSteps(bw / ar, steps);
            double arW = (double) bw / bhInW;
            int bh = roundToSteps(h, steps);
            int bwInH = roundToSteps(bh * ar, steps);
            double arH = (double) bwInH / bh;
            if (Math.abs(arW - ar) < Math.abs(arH - ar)) {
                rw = bw;
                rh = (int) (bw / ar + 0.5);
            } else {
                rw = (int) (bh * ar + 0.5);
                rh = bh;
            }
        } else {
            rw = width;
            rh = height;
        }
        Reso bucket = new Reso(rw - rw % steps, rh - rh % steps);
        if (bucket.width() < steps || bucket.height() < steps) {
            bucket = new Reso(Math.max(steps, bucket.width()), Math.max(steps, bucket.height()));
        }
        return new Assignment(bucket, rw, rh, bucket.aspect() - ar);
    }

    private static int roundToSteps(double x, int steps) {
        int v = (int) (x + 0.5);
        return v - v % steps;
    }

    /**
     * The crop box kohya records for SDXL conditioning ({@code get_crop_ltrb}, trainer-spec §3.4): a
     * fit-inside (letterbox) box, not the crop actually taken — reproduced as the reference records it.
     *
     * @return {l, t, r, b} as floats (the reference keeps them as float64)
     */
    public static double[] cropLtrb(Reso bucket, int width, int height) {
        double bw = bucket.width();
        double bh = bucket.height();
        double ar = (double) width / height;
        double rw;
        double rh;
        if (bw / bh > ar) {
            rh = bh;
            rw = bh * ar;
        } else {
            rw = bw;
            rh = bw / ar;
        }
        double l = Math.floor((bw - rw) / 2);
        double t = Math.floor((bh - rh) / 2);
        return new double[] {l, t, l + rw, t + rh};
    }

    /** The buckets sorted as kohya lists them (for {@code ss_bucket_info} indices). */
    public static List<Reso> sorted(java.util.Collection<Reso> resos) {
        List<Reso> l = new ArrayList<>(resos);
        l.sort(Comparator.naturalOrder());
        return l;
    }
}
