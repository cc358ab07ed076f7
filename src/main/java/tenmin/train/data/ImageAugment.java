package tenmin.train.data;

import tenmin.train.Rng;

/**
 * The reference's per-draw image augmentations, which only a run without cached latents can use (each draw decodes
 * and encodes its image again): {@code --random_crop} and {@code --color_aug} (kohya {@code trim_and_resize_if_required}
 * and {@code AugHelper.color_aug}, trainer-spec §3.4).
 *
 * <ul>
 *   <li>random crop: after the resize, the bucket-sized window's left edge is drawn uniformly in {@code [0, trim]}
 *       (trim = resized width − bucket width; Python's {@code randint}, both ends included), then its top edge the
 *       same way, instead of {@code trim / 2}. The SDXL crop conditioning stays the centred box the reference records
 *       (it does not reflect the random crop there either);</li>
 *   <li>colour: with probability 0.33, either (half of those) a hue shift by a uniform amount in [−8, 8] on OpenCV's
 *       8-bit HSV scale (hue 0..179, i.e. ±16°), or a "gamma" {@code v ← ⌊min(v^γ, 255)⌋} on the 8-bit values with γ
 *       uniform in [0.95, 1.05] — literally the reference's {@code np.clip(image**gamma, 0, 255)}, which darkens or
 *       clips strongly because v is not normalised first. The hue goes through OpenCV's 8-bit BGR↔HSV conversions
 *       with the reference's channel order (its RGB array passed as BGR).</li>
 * </ul>
 * Applied after the crop and before the flip, to the colour channels only.
 *
 * @param randomCrop {@code --random_crop}
 * @param colorAug   {@code --color_aug}
 */
public record ImageAugment(boolean randomCrop, boolean colorAug) {
    /** Neither. */
    public static final ImageAugment NONE = new ImageAugment(false, false);

    private static final int HUE_SHIFT_LIMIT = 8;
    private static final int HSV_SHIFT = 12;
    /** OpenCV's {@code sdiv_table}: round(255·2^12 / v). */
    private static final int[] S_DIV = new int[256];
    /** OpenCV's {@code hdiv_table180}: round(180·2^12 / (6·d)). */
    private static final int[] H_DIV = new int[256];

    static {
        for (int i = 1; i < 256; i++) {
            S_DIV[i] = (int) Math.rint((255 << HSV_SHIFT) / (double) i);
            H_DIV[i] = (int) Math.rint((180 << HSV_SHIFT) / (6.0 * i));
        }
    }

    /** True when either is on. */
    public boolean any() {
        return randomCrop || colorAug;
    }

    /**
     * Image {@code planes} (as read) resized and cropped into {@code a}'s bucket, then colour-augmented, with the draws
     * from {@code rng} in the reference's order (crop left, crop top, then the colour draws).
     */
    public ImagePlanes apply(ImagePlanes planes, Buckets.Assignment a, Rng rng) {
        ImagePlanes cropped;
        if (randomCrop) {
            ImagePlanes resized = planes.resize(a.resizedWidth(), a.resizedHeight());
            int w = a.bucket().width();
            int h = a.bucket().height();
            int left = resized.width() > w ? rng.nextInt(resized.width() - w + 1) : 0;
            int top = resized.height() > h ? rng.nextInt(resized.height() - h + 1) : 0;
            cropped = resized.crop(left, top, w, h);
        } else {
            cropped = planes.fitToBucket(a);                                  // the centred window
        }
        return colorAug ? color(cropped, rng) : cropped;
    }

    /** {@code AugHelper.color_aug} on the 8-bit values of the colour planes; alpha (a fourth plane) untouched. */
    static ImagePlanes color(ImagePlanes in, Rng rng) {
        if (rng.nextDouble() > 0.33) {
            return in;
        }
        float[][] p = new float[in.planes().length][];
        for (int c = 0; c < p.length; c++) {
            p[c] = in.planes()[c].clone();
        }
        if (rng.nextDouble() > 0.5) {
            double shift = rng.uniform(-HUE_SHIFT_LIMIT, HUE_SHIFT_LIMIT);
            hueShift(p, shift < 0 ? 180 + shift : shift);
        } else {
            double gamma = rng.uniform(0.95, 1.05);
            for (int c = 0; c < 3; c++) {
                for (int i = 0; i < p[c].length; i++) {
                    double v = Math.pow(Math.round(p[c][i]), gamma);
                    p[c][i] = (float) Math.floor(Math.min(255, Math.max(0, v)));
                }
            }
        }
        return new ImagePlanes(in.width(), in.height(), p);
    }

    /**
     * The hue of every pixel moved by {@code shift} (in [0, 180)) on OpenCV's 8-bit scale: BGR→HSV (planes 0, 1, 2
     * read as B, G, R, as the reference hands its RGB array to {@code COLOR_BGR2HSV}), {@code h ← ⌊(h + shift) mod 180⌋}
     * (numpy's float→uint8 assignment truncates), HSV→BGR.
     */
    static void hueShift(float[][] p, double shift) {
        for (int i = 0; i < p[0].length; i++) {
            int b = Math.round(p[0][i]);
            int g = Math.round(p[1][i]);
            int r = Math.round(p[2][i]);
            int[] hsv = toHsv(b, g, r);
            int hue = (int) Math.floor((hsv[0] + shift) % 180);
            int[] bgr = toBgr(hue, hsv[1], hsv[2]);
            p[0][i] = bgr[0];
            p[1][i] = bgr[1];
            p[2][i] = bgr[2];
        }
    }

    /** OpenCV's 8-bit {@code RGB2HSV_b} (fixed point, 12 fraction bits): {h 0..180, s, v}. */
    static int[] toHsv(int b, int g, int r) {
        int v = Math.max(b, Math.max(g, r));
        int vmin = Math.min(b, Math.min(g, r));
        int diff = v - vmin;
        int vr = v == r ? -1 : 0;
        int vg = v == g ? -1 : 0;
        int round = 1 << (HSV_SHIFT - 1);
        int s = (diff * S_DIV[v] + round) >> HSV_SHIFT;
        int h = (vr & (g - b)) + (~vr & ((vg & (b - r + 2 * diff)) + (~vg & (r - g + 4 * diff))));
        h = (h * H_DIV[diff] + round) >> HSV_SHIFT;
        h += h < 0 ? 180 : 0;
        return new int[] {h, s, v};
    }

    /** OpenCV's 8-bit {@code HSV2RGB_b}: the float conversion of h·6/180, s/255, v/255, rounded back to 8 bits. */
    static int[] toBgr(int hue, int sat, int val) {
        float h = hue * (6f / 180f);
        float s = sat * (1f / 255f);
        float v = val * (1f / 255f);
        float b;
        float g;
        float r;
        if (s == 0) {
            b = g = r = v;
        } else {
            while (h >= 6) {
                h -= 6;
            }
            int sector = (int) Math.floor(h);
            h -= sector;
            float[] tab = {v, v * (1f - s), v * (1f - s * h), v * (1f - s * (1f - h))};
            int[][] sectors = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
            b = tab[sectors[sector][0]];
            g = tab[sectors[sector][1]];
            r = tab[sectors[sector][2]];
        }
        return new int[] {to8(b), to8(g), to8(r)};
    }

    private static int to8(float x) {
        return (int) Math.max(0, Math.min(255, Math.rint(x * 255f)));
    }
}
