package tenmin.formats;

import java.awt.image.BufferedImage;
import java.util.Arrays;

/**
 * An 8-bit RGB picture in memory: {@code width·height·3} bytes, rows top to bottom, pixels left to right,
 * R, G, B. Immutable.
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] rgb; // (H, W, 3)

    private RgbImage(int width, int height, byte[] rgb) {
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    /** An image over a copy of {@code rgb} (H, W, 3). */
    public static RgbImage of(int width, int height, byte[] rgb) {
        checkSize(width, height);
        if (rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("an RGB image of " + width + "x" + height + " has "
                    + (long) width * height * 3 + " bytes, got " + rgb.length);
        }
        return new RgbImage(width, height, rgb.clone());
    }

    /** A single-colour image ({@code 0xRRGGBB}). */
    public static RgbImage filled(int width, int height, int rgb) {
        checkSize(width, height);
        byte[] data = new byte[width * height * 3];
        for (int i = 0; i < data.length; i += 3) {
            data[i] = (byte) (rgb >> 16);
            data[i + 1] = (byte) (rgb >> 8);
            data[i + 2] = (byte) rgb;
        }
        return new RgbImage(width, height, data);
    }

    /** The RGB content of a Java2D image (alpha dropped). */
    public static RgbImage from(BufferedImage image) {
        int w = image.getWidth();
        int h = image.getHeight();
        checkSize(w, h);
        int[] argb = image.getRGB(0, 0, w, h, null, 0, w);
        byte[] data = new byte[w * h * 3];
        for (int i = 0; i < argb.length; i++) {
            data[3 * i] = (byte) (argb[i] >> 16);
            data[3 * i + 1] = (byte) (argb[i] >> 8);
            data[3 * i + 2] = (byte) argb[i];
        }
        return new RgbImage(w, h, data);
    }

    private static void checkSize(int width, int height) {
        if (width < 1 || height < 1 || (long) width * height * 3 > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("image size " + width + "x" + height + " out of range");
        }
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** The pixel at (x, y) as {@code 0xRRGGBB}. */
    public int rgb(int x, int y) {
        if (x < 0 || y < 0 || x >= width || y >= height) {
            throw new IndexOutOfBoundsException("pixel (" + x + ", " + y + ") outside " + width + "x" + height);
        }
        int i = 3 * (y * width + x);
        return (rgb[i] & 0xFF) << 16 | (rgb[i + 1] & 0xFF) << 8 | (rgb[i + 2] & 0xFF);
    }

    /** A copy of the bytes (H, W, 3). */
    public byte[] toBytes() {
        return rgb.clone();
    }

    /** Copies row y (W·3 bytes) into {@code dst} at {@code offset}. */
    public void copyRow(int y, byte[] dst, int offset) {
        System.arraycopy(rgb, y * width * 3, dst, offset, width * 3);
    }

    /** A {@code TYPE_INT_RGB} Java2D copy. */
    public BufferedImage toBufferedImage() {
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[width];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int i = 3 * (y * width + x);
                row[x] = (rgb[i] & 0xFF) << 16 | (rgb[i + 1] & 0xFF) << 8 | (rgb[i + 2] & 0xFF);
            }
            out.setRGB(0, y, width, 1, row, 0, width);
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RgbImage other && width == other.width && height == other.height
                && Arrays.equals(rgb, other.rgb);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(rgb);
    }

    @Override
    public String toString() {
        return "RgbImage[" + width + "x" + height + "]";
    }
}
