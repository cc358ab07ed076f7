package tenmin.train;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.data.ImagePlanes;

/**
 * {@code --alpha_mask}: each image's alpha channel as a loss mask, so transparent parts of the training images do
 * not teach the model (the reference's {@code apply_masked_loss}). The alpha is resized and cropped into the bucket
 * with the colours, rounded to 8 bits and divided by 255 (all ones for an image without alpha), then reduced to the
 * latent grid by averaging each {@code factor × factor} block (PyTorch's {@code interpolate(mode="area")} for the
 * exact factor); a flipped draw flips it. The elementwise loss is multiplied by it before the mean per image.
 * {@code --masked_loss} takes the masks from separate images instead ({@link #fromConditioning}).
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

    /**
     * {@code --masked_loss}: each image's mask is the file of the same stem in its subset's conditioning folder, which
     * must have the image's size (the reference asserts it); resized as the image (area averaging when it shrinks),
     * centre-cropped into the bucket, its red channel rounded to 8 bits over 255, averaged to the latent grid. Every
     * image needs one and every mask file an image, as the reference checks.
     *
     * @throws InputException naming the images without a mask, a mask without an image, or a mask of another size
     */
    static AlphaMasks fromConditioning(TrainingData data, int factor, Reporter.Progress progress) {
        int n = data.imageCount();
        List<String> missing = new ArrayList<>();
        Path[] files = new Path[n];
        Set<Path> used = new HashSet<>();
        for (int i = 0; i < n; i++) {
            Path dir = data.dataset().subsets().get(data.item(i).subset()).conditioningDir();
            Path image = data.item(i).image();
            files[i] = namesake(dir, image);
            if (files[i] == null) {
                missing.add(image.getFileName().toString());
            } else {
                used.add(files[i].toAbsolutePath().normalize());
            }
        }
        if (!missing.isEmpty()) {
            throw new InputException("--masked_loss: no mask in conditioning_data_dir for " + missing.size()
                    + " image(s): " + String.join(", ", missing.subList(0, Math.min(5, missing.size())))
                    + (missing.size() > 5 ? ", ..." : ""));
        }
        for (DreamBoothDataset.Subset s : data.dataset().subsets()) {
            for (Path p : imagesIn(s.conditioningDir())) {
                if (!used.contains(p.toAbsolutePath().normalize())) {
                    throw new InputException("--masked_loss: " + p + " is the mask of no training image");
                }
            }
        }
        float[][] masks = new float[n][];
        int[][] shapes = new int[n][];
        for (int i = 0; i < n; i++) {
            DreamBoothDataset.Item it = data.item(i);
            ImagePlanes mask = ImagePlanes.read(files[i]);
            if (mask.width() != it.width() || mask.height() != it.height()) {
                throw new InputException(files[i] + ": the mask is " + mask.width() + "x" + mask.height() + ", its image "
                        + it.image().getFileName() + " " + it.width() + "x" + it.height() + " (they must match)");
            }
            ImagePlanes fitted = mask.fitToBucket(data.assignment(i));
            masks[i] = area(fitted.mask(0), fitted.width(), fitted.height(), factor);   // the red channel
            shapes[i] = new int[] {fitted.height() / factor, fitted.width() / factor};
            progress.advance(1);
        }
        return new AlphaMasks(masks, shapes);
    }

    /** The image file in {@code dir} whose stem is {@code image}'s, or null. */
    private static Path namesake(Path dir, Path image) {
        String name = image.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot < 0 ? name : name.substring(0, dot);
        for (Path p : imagesIn(dir)) {
            String n = p.getFileName().toString();
            int d = n.lastIndexOf('.');
            if ((d < 0 ? n : n.substring(0, d)).equals(stem)) {
                return p;
            }
        }
        return null;
    }

    /** The image files directly in {@code dir} (the reference's {@code glob_images}), sorted. */
    private static List<Path> imagesIn(Path dir) {
        return DreamBoothDataset.globImages(dir);
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
