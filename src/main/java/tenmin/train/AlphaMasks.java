package tenmin.train;

import tenmin.core.Reporter;
import tenmin.train.data.ImagePlanes;

/**
 * {@code --alpha_mask}: each image's alpha channel as a loss mask, so transparent parts of the training images do
 * not teach the model (the reference's {@code apply_masked_loss}). The alpha is resized and cropped into the bucket
 * with the colours, rounded to 8 bits and divided by 255 (all ones for an image without alpha), then reduced to the
 * latent grid by averaging each {@code factor × factor} block (PyTorch's {@code interpolate(mode="area")} for the
 * exact factor); a flipped draw flips it. The elementwise loss is multiplied by it before the mean per image.
 */
public final class AlphaMasks {
    private final float[][] masks;      // per item, (h, w) at latent resolution
    private final int[][] shapes;       // per item {h, w}

    private AlphaMasks(float[][] masks, int[][] shapes) {
        this.masks = masks;
        this.shapes = shapes;
    }

    /** Reads every image of {@code data} with its alpha; {@code factor} is the VAE's down-sampling (8). */
    static AlphaMasks build(TrainingData data, int factor, Reporter.Progress progress) {
        int n = data.imageCount();
        float[][] masks = new float[n][];
        int[][] shapes = new int[n][];
        for (int i = 0; i < n; i++) {
            ImagePlanes img = ImagePlanes.readWithAlpha(data.item(i).image()).fitToBucket(data.assignment(i));
            masks[i] = area(img.alphaMask(), img.width(), img.height(), factor);
            shapes[i] = new int[] {img.height() / factor, img.width() / factor};
            progress.advance(1);
        }
        return new AlphaMasks(masks, shapes);
    }

    /** The mean of each {@code f × f} block of the {@code width × height} plane {@code m}. */
    static float[] area(float[] m, int width, int height, int f) {
        int w = width / f;
        int h = height / f;
        float[] out = new float[w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                float sum = 0;
                for (int dy = 0; dy < f; dy++) {
                    for (int dx = 0; dx < f; dx++) {
                        sum += m[(y * f + dy) * width + x * f + dx];
                    }
                }
                out[y * w + x] = sum / (f * f);
            }
        }
        return out;
    }

    /** The masks of a micro-batch's images {@code items}, flipped where {@code flips} says: (N, h, w) row-major. */
    float[] batch(int[] items, boolean[] flips) {
        int h = shapes[items[0]][0];
        int w = shapes[items[0]][1];
        float[] out = new float[items.length * h * w];
        for (int b = 0; b < items.length; b++) {
            float[] m = masks[items[b]];
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    out[(b * h + y) * w + x] = m[y * w + (flips[b] ? w - 1 - x : x)];
                }
            }
        }
        return out;
    }
}
