package tenmin.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.train.Rng;

/**
 * The reference's per-draw augmentations: random crops over the whole trim (both ends included) and the centre one
 * without; the colour augmentation's branch frequencies and each branch's formula; OpenCV's 8-bit HSV scale on the
 * colours whose hue it defines exactly, and the conversions against the textbook float formulas.
 */
class ImageAugmentTest {

    /** A w x h image whose R plane holds x and G plane holds y (values < 256). */
    private static ImagePlanes coordinates(int w, int h) {
        float[][] p = new float[3][w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                p[0][y * w + x] = x;
                p[1][y * w + x] = y;
            }
        }
        return new ImagePlanes(w, h, p);
    }

    @Test
    void randomCropsCoverTheTrimAndCentreCropsStayInTheMiddle() {
        ImagePlanes img = coordinates(96, 80);
        Buckets.Assignment a = new Buckets.Assignment(new Buckets.Reso(64, 64), 96, 80, 0);   // trims 32 and 16
        ImageAugment crop = new ImageAugment(true, false);
        int[] lefts = new int[33];
        int[] tops = new int[17];
        int n = 4000;
        for (int s = 0; s < n; s++) {
            ImagePlanes out = crop.apply(img, a, new Rng(s));
            assertEquals(64, out.width());
            int left = (int) out.planes()[0][0];
            int top = (int) out.planes()[1][0];
            assertEquals(left + 63, (int) out.planes()[0][63], "a window, not a resample");
            lefts[left]++;
            tops[top]++;
        }
        for (int i = 0; i <= 32; i++) {
            assertEquals(n / 33.0, lefts[i], 5 * Math.sqrt(n / 33.0), "left " + i);
        }
        for (int i = 0; i <= 16; i++) {
            assertEquals(n / 17.0, tops[i], 5 * Math.sqrt(n / 17.0), "top " + i);
        }
        ImagePlanes centre = ImageAugment.NONE.apply(img, a, new Rng(1));
        assertEquals(16f, centre.planes()[0][0]);
        assertEquals(8f, centre.planes()[1][0]);
    }

    @Test
    void openCvHueScaleOnThePrimariesAndSecondaries() {
        // (B, G, R) -> H on OpenCV's 0..179 scale (degrees / 2), S, V
        int[][] cases = {{0, 0, 255, 0}, {0, 255, 255, 30}, {0, 255, 0, 60}, {255, 255, 0, 90}, {255, 0, 0, 120},
                {255, 0, 255, 150}};
        for (int[] c : cases) {
            assertArrayEquals(new int[] {c[3], 255, 255}, ImageAugment.toHsv(c[0], c[1], c[2]));
            assertArrayEquals(new int[] {c[0], c[1], c[2]}, ImageAugment.toBgr(c[3], 255, 255));
        }
        assertArrayEquals(new int[] {0, 0, 128}, ImageAugment.toHsv(128, 128, 128));
    }

    @Test
    void hsvConversionsFollowTheTextbookFormulas() {
        Rng rng = new Rng(3);
        for (int i = 0; i < 20000; i++) {
            int b = rng.nextInt(256);
            int g = rng.nextInt(256);
            int r = rng.nextInt(256);
            int[] hsv = ImageAugment.toHsv(b, g, r);
            int max = Math.max(b, Math.max(g, r));
            int min = Math.min(b, Math.min(g, r));
            assertEquals(max, hsv[2]);
            double s = max == 0 ? 0 : 255.0 * (max - min) / max;
            assertEquals(s, hsv[1], 1.0, "S of " + b + "," + g + "," + r);      // 12-bit fixed point
            if (max > min) {
                double deg;
                if (max == r) {
                    deg = 60.0 * (g - b) / (max - min);
                } else if (max == g) {
                    deg = 120 + 60.0 * (b - r) / (max - min);
                } else {
                    deg = 240 + 60.0 * (r - g) / (max - min);
                }
                double h = ((deg / 2) % 180 + 180) % 180;
                double d = Math.abs(h - hsv[0]);
                assertTrue(Math.min(d, 180 - d) <= 1.0, "H " + hsv[0] + " for " + h);   // 12-bit fixed point
            }
            // back: within what rounding H to 2° and S to 1/255 can move a channel
            int[] bgr = ImageAugment.toBgr(hsv[0], hsv[1], hsv[2]);
            int tolerance = 1 + (int) Math.ceil(max * 2.0 / 60);
            assertEquals(b, bgr[0], tolerance);
            assertEquals(g, bgr[1], tolerance);
            assertEquals(r, bgr[2], tolerance);
        }
    }

    @Test
    void colourAugmentationTakesAThirdOfTheDrawsHalfHueHalfGamma() {
        // pixel 0 grey (a hue shift leaves it), pixel 1 a red (a hue shift moves it)
        ImagePlanes img = new ImagePlanes(2, 1, new float[][] {{128, 50}, {128, 50}, {128, 200}});
        int n = 3000;
        int hue = 0;
        int gamma = 0;
        for (int s = 0; s < n; s++) {
            ImagePlanes out = ImageAugment.color(img, new Rng(s));
            float[][] p = out.planes();
            if (java.util.Arrays.deepEquals(p, img.planes())) {
                continue;
            }
            if (p[0][0] == 128 && p[1][0] == 128 && p[2][0] == 128) {
                hue++;
                // a hue shift keeps a pixel's max and min channels' values (V, and S up to rounding)
                float max = Math.max(p[0][1], Math.max(p[1][1], p[2][1]));
                assertEquals(200, max, 1, "V kept");
                continue;
            }
            gamma++;
            // v' = floor(min(v^γ, 255)) with one γ in [0.95, 1.05] for every channel value
            double lo = Math.log(p[0][0]) / Math.log(128);
            double hi = Math.log(p[0][0] + 1) / Math.log(128);
            assertTrue(hi > 0.95 && lo < 1.05, "γ from the grey value " + p[0][0]);
            boolean found = false;
            for (int k = 0; k <= 4000 && !found; k++) {
                double gam = Math.max(0.95, Math.min(1.05, lo + (hi - lo) * k / 4000));
                found = Math.floor(Math.min(Math.pow(128, gam), 255)) == p[0][0]
                        && Math.floor(Math.min(Math.pow(200, gam), 255)) == p[2][1]
                        && Math.floor(Math.min(Math.pow(50, gam), 255)) == p[0][1];
            }
            assertTrue(found, "one γ gives every channel: " + java.util.Arrays.deepToString(p));
        }
        double changed = hue + gamma;
        assertEquals(0.33 * n, changed, 5 * Math.sqrt(n * 0.33 * 0.67));
        assertEquals(changed / 2, hue, 5 * Math.sqrt(changed / 4));
    }
}
