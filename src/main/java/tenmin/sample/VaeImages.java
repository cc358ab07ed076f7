package tenmin.sample;

import tenmin.formats.RgbImage;

/** Turns the VAE decoder's output into 8-bit pictures. */
public final class VaeImages {
    private VaeImages() {
    }

    /**
     * Image {@code index} of a decoded batch (N, 3, H, W) in [-1, 1] as 8-bit RGB, the way diffusers and
     * kohya's sample images convert it (trainer-spec §11): {@code round(clamp(x/2 + 0.5, 0, 1)·255)} in
     * float32, rounding half to even as numpy does. (A1111 truncates instead of rounding: at most one level
     * darker.)
     */
    public static RgbImage toRgb(float[] decoded, int index, int width, int height) {
        int plane = width * height;
        int offset = index * 3 * plane;
        if (index < 0 || offset + 3 * plane > decoded.length) {
            throw new IllegalArgumentException("image " + index + " of " + width + "x" + height
                    + " is outside a batch of " + decoded.length + " values");
        }
        byte[] rgb = new byte[3 * plane];
        for (int c = 0; c < 3; c++) {
            for (int p = 0; p < plane; p++) {
                float v = decoded[offset + c * plane + p] / 2f + 0.5f;
                v = Math.max(0f, Math.min(1f, v)); // NaN becomes 0
                rgb[3 * p + c] = (byte) (int) Math.rint(v * 255f);
            }
        }
        return RgbImage.of(width, height, rgb);
    }
}
