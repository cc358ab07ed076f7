package tenmin.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;

class ImagesTest {
    private static ImagePlanes gray(int w, int h, float[] values) {
        return new ImagePlanes(w, h, new float[][] {values.clone(), values.clone(), values.clone()});
    }

    @Test
    void areaShrinkAveragesFootprints() {
        float[] v = new float[16];
        for (int i = 0; i < 16; i++) {
            v[i] = i;
        }
        ImagePlanes r = gray(4, 4, v).resize(2, 2);
        // 2x2 block means: (0+1+4+5)/4 ...
        assertArrayEquals(new float[] {2.5f, 4.5f, 10.5f, 12.5f}, r.planes()[0], 1e-5f);
        // 3 -> 2: footprints [0,1.5) and [1.5,3): (a + 0.5b)/1.5 and (0.5b + c)/1.5
        ImagePlanes t = gray(3, 3, new float[] {0, 3, 6, 0, 3, 6, 0, 3, 6}).resize(2, 2);
        assertEquals((0 + 0.5f * 3) / 1.5f, t.planes()[0][0], 1e-5f);
        assertEquals((0.5f * 3 + 6) / 1.5f, t.planes()[0][1], 1e-5f);
    }

    @Test
    void lanczosKeepsConstantsAndRampsInterior() {
        float[] c = new float[6 * 4];
        java.util.Arrays.fill(c, 77f);
        ImagePlanes up = gray(6, 4, c).resize(13, 9);
        for (float x : up.planes()[1]) {
            assertEquals(77f, x, 1e-3f);
        }
        // a horizontal ramp upscaled 2x stays close to the ramp in the interior: out(d) ~ in at (d+0.5)/2-0.5
        // (PIL's window [int(c-3+0.5), int(c+3+0.5)) is not symmetric about c, so within 3% of a step)
        float[] ramp = new float[16];
        for (int i = 0; i < 16; i++) {
            ramp[i] = 10 * i;
        }
        ImagePlanes r = gray(16, 1, ramp).resize(32, 1);
        for (int d = 8; d < 24; d++) {
            assertEquals(10 * ((d + 0.5) / 2 - 0.5), r.planes()[0][d], 0.3, "d=" + d);
        }
    }

    @Test
    void cropFlipAndVaeInput() {
        float[] v = new float[12];
        for (int i = 0; i < 12; i++) {
            v[i] = i;
        }
        ImagePlanes img = gray(4, 3, v);
        ImagePlanes c = img.centerCrop(2, 1);       // left 1, top 1
        assertArrayEquals(new float[] {5, 6}, c.planes()[0]);
        assertArrayEquals(new float[] {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}, img.flipHorizontal().planes()[2]);
        float[] x = gray(2, 1, new float[] {0, 255}).toVaeInput();
        assertArrayEquals(new float[] {-1, 1, -1, 1, -1, 1}, x);
    }

    @Test
    void dropsAlphaAndReadsRgb() {
        BufferedImage b = new BufferedImage(2, 1, BufferedImage.TYPE_INT_ARGB);
        b.setRGB(0, 0, 0x00FF8001); // fully transparent, colour kept
        b.setRGB(1, 0, 0x80102030);
        ImagePlanes r = ImagePlanes.fromBuffered(b);
        assertArrayEquals(new float[] {255, 0x10}, r.planes()[0]);
        assertArrayEquals(new float[] {128, 0x20}, r.planes()[1]);
        assertArrayEquals(new float[] {1, 0x30}, r.planes()[2]);
    }

    /** {@code --alpha_mask}: the alpha plane travels with the colours; the mask is round(alpha)/255, ones without alpha. */
    @Test
    void alphaPlaneResizesWithTheColoursAndBecomesTheMask(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws java.io.IOException {
        BufferedImage b = new BufferedImage(4, 2, BufferedImage.TYPE_INT_ARGB);
        int[] alpha = {0, 0, 255, 255, 0, 0, 255, 255};
        for (int i = 0; i < 8; i++) {
            b.setRGB(i % 4, i / 4, alpha[i] << 24 | 0x406080);
        }
        java.nio.file.Path png = dir.resolve("a.png");
        ImageIO.write(b, "png", png.toFile());
        ImagePlanes img = ImagePlanes.readWithAlpha(png);
        assertEquals(4, img.planes().length);
        assertArrayEquals(new float[] {0, 0, 1, 1, 0, 0, 1, 1}, img.alphaMask());
        ImagePlanes half = img.resize(2, 1);                           // area: each output pixel averages 2x2
        assertArrayEquals(new float[] {0, 1}, half.alphaMask());
        assertArrayEquals(new float[] {1, 0}, half.flipHorizontal().alphaMask());
        assertArrayEquals(new float[] {0x40, 0x40}, half.planes()[0], 1e-4f);
        BufferedImage opaque = new BufferedImage(2, 1, BufferedImage.TYPE_INT_RGB);
        java.nio.file.Path jpg = dir.resolve("b.png");
        ImageIO.write(opaque, "png", jpg.toFile());
        assertArrayEquals(new float[] {1, 1}, ImagePlanes.readWithAlpha(jpg).alphaMask());
        // 127.5 rounds to 128: the reference's resized uint8 alpha
        assertEquals(128 / 255f, new ImagePlanes(1, 1, new float[][] {{0}, {0}, {0}, {127.5f}}).alphaMask()[0]);
    }

    @Test
    void readsWebp(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        assertTrue(ImageIO.getImageReadersBySuffix("webp").hasNext(), "TwelveMonkeys WebP plugin missing");
        // a 1x1 lossless WebP (RIFF/VP8L), transparent black: alpha is dropped, RGB kept
        byte[] webp = java.util.Base64.getDecoder().decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==");
        java.nio.file.Path f = java.nio.file.Files.write(dir.resolve("x.webp"), webp);
        assertArrayEquals(new int[] {1, 1}, DreamBoothDataset.readSize(f));
        ImagePlanes img = ImagePlanes.read(f);
        assertEquals(1, img.width());
        assertArrayEquals(new float[] {0}, img.planes()[0]);
    }
}
