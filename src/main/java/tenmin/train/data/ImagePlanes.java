package tenmin.train.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

import javax.imageio.ImageIO;

import tenmin.core.InputException;

/**
 * An RGB image as three float planes with values 0..255 (alpha dropped, as PIL's {@code convert("RGB")}
 * does for the reference), plus the resize and crop steps of trainer-spec §3.4. (The 8-bit picture type
 * of the project is {@link tenmin.formats.RgbImage}; this one exists for resampling in float.)
 *
 * @param width  pixels
 * @param height pixels
 * @param planes R, G, B (and with {@link #readWithAlpha} A), each {@code height*width}, row-major
 */
public record ImagePlanes(int width, int height, float[][] planes) {

    /** Reads png/jpg/bmp (JDK) and webp (TwelveMonkeys plugin); a file no reader decodes is an input error. */
    public static ImagePlanes read(Path file) {
        return fromBuffered(decode(file));
    }

    /**
     * R, G, B and alpha ({@code --alpha_mask}; PIL's {@code convert("RGBA")}: 255 where the file has no alpha), so the
     * alpha is resized and cropped with the colours, as the reference resizes its RGBA array.
     */
    public static ImagePlanes readWithAlpha(Path file) {
        BufferedImage img = decode(file);
        ImagePlanes rgb = fromBuffered(img);
        int w = img.getWidth();
        int h = img.getHeight();
        int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
        float[] a = new float[w * h];
        boolean alpha = img.getColorModel().hasAlpha();
        for (int i = 0; i < a.length; i++) {
            a[i] = alpha ? (argb[i] >>> 24) & 0xFF : 255f;
        }
        return new ImagePlanes(w, h, new float[][] {rgb.planes[0], rgb.planes[1], rgb.planes[2], a});
    }

    /**
     * The alpha plane as the reference's loss mask: rounded to 8 bits (its resized uint8 array), divided by 255;
     * all ones without an alpha plane.
     */
    public float[] alphaMask() {
        if (planes.length > 3) {
            return mask(3);
        }
        float[] ones = new float[width * height];
        java.util.Arrays.fill(ones, 1f);
        return ones;
    }

    /** Plane {@code plane} as a loss mask: each value rounded to 8 bits (an 8-bit image array), divided by 255. */
    public float[] mask(int plane) {
        float[] m = new float[width * height];
        for (int i = 0; i < m.length; i++) {
            m[i] = Math.round(Math.min(255f, Math.max(0f, planes[plane][i]))) / 255f;
        }
        return m;
    }

    private static BufferedImage decode(Path file) {
        BufferedImage img;
        try {
            img = ImageIO.read(file.toFile());
        } catch (IOException | RuntimeException e) {
            throw new InputException(file + ": cannot decode image: " + e.getMessage(), e);
        }
        if (img == null) {
            throw new InputException(file + ": not a readable image (png, jpg, webp, bmp)");
        }
        return img;
    }

    public static ImagePlanes fromBuffered(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
        float[][] p = new float[3][w * h];
        for (int i = 0; i < argb.length; i++) {
            p[0][i] = (argb[i] >>> 16) & 0xFF;
            p[1][i] = (argb[i] >>> 8) & 0xFF;
            p[2][i] = argb[i] & 0xFF;
        }
        return new ImagePlanes(w, h, p);
    }

    /**
     * Resizes to {@code w x h}: area averaging (OpenCV {@code INTER_AREA}) when both sides shrink, Lanczos-3
     * (PIL {@code LANCZOS}) otherwise, as kohya's {@code trim_and_resize_if_required} chooses.
     */
    public ImagePlanes resize(int w, int h) {
        if (w == width && h == height) {
            return this;
        }
        boolean area = width > w && height > h;
        float[][] out = new float[planes.length][];
        Resampler.Weights wx = area ? Resampler.area(width, w) : Resampler.lanczos(width, w);
        Resampler.Weights wy = area ? Resampler.area(height, h) : Resampler.lanczos(height, h);
        for (int c = 0; c < planes.length; c++) {
            float[] horiz = Resampler.applyRows(planes[c], width, height, wx);          // (height, w)
            out[c] = Resampler.applyColumns(horiz, w, height, wy);                      // (h, w)
            if (!area) {
                clamp255(out[c]); // Lanczos overshoots; PIL clips to 0..255
            }
        }
        return new ImagePlanes(w, h, out);
    }

    private static void clamp255(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.min(255f, Math.max(0f, a[i]));
        }
    }

    /** The centre {@code w x h} crop: left = (width−w)/2, top = (height−h)/2, rounded down. */
    public ImagePlanes centerCrop(int w, int h) {
        if (w > width || h > height) {
            throw new IllegalArgumentException("crop " + w + "x" + h + " larger than image " + width + "x" + height);
        }
        return crop((width - w) / 2, (height - h) / 2, w, h);
    }

    /** The {@code w x h} window whose top-left pixel is ({@code left}, {@code top}). */
    public ImagePlanes crop(int left, int top, int w, int h) {
        if (left < 0 || top < 0 || left + w > width || top + h > height) {
            throw new IllegalArgumentException("crop " + w + "x" + h + " at " + left + "," + top + " outside image "
                    + width + "x" + height);
        }
        float[][] out = new float[planes.length][w * h];
        for (int c = 0; c < planes.length; c++) {
            for (int y = 0; y < h; y++) {
                System.arraycopy(planes[c], (top + y) * width + left, out[c], y * w, w);
            }
        }
        return new ImagePlanes(w, h, out);
    }

    /** Mirror image (left-right). */
    public ImagePlanes flipHorizontal() {
        float[][] out = new float[planes.length][width * height];
        for (int c = 0; c < planes.length; c++) {
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    out[c][y * width + x] = planes[c][y * width + (width - 1 - x)];
                }
            }
        }
        return new ImagePlanes(width, height, out);
    }

    /** The VAE's input: (3, H, W) with values rounded to 8 bits as the reference's uint8 image, mapped to [-1, 1]. */
    public float[] toVaeInput() {
        float[] out = new float[3 * width * height];
        int n = width * height;
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < n; i++) {
                float v = Math.round(planes[c][i]);
                out[c * n + i] = (v / 255f - 0.5f) / 0.5f;
            }
        }
        return out;
    }

    /** Resize and centre-crop into a bucket as {@link Buckets.Assignment} says. */
    public ImagePlanes fitToBucket(Buckets.Assignment a) {
        return resize(a.resizedWidth(), a.resizedHeight()).centerCrop(a.bucket().width(), a.bucket().height());
    }
}
