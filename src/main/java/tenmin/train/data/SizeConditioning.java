package tenmin.train.data;

/**
 * SDXL's size and crop micro-conditioning of one sample (trainer-spec §3.5, §4.3), as the reference
 * records it: {@code original_sizes_hw}, {@code crop_top_lefts} (integer parts of the recorded crop box)
 * and {@code target_sizes_hw}.
 */
public record SizeConditioning(int originalHeight, int originalWidth, int cropTop, int cropLeft, int targetHeight,
                               int targetWidth) {

    /**
     * The values for an image of {@code width x height} in {@code bucket}; a flipped draw records
     * {@code left = bucketW − crop_right} (kohya's flip rule).
     */
    public static SizeConditioning of(Buckets.Reso bucket, int width, int height, boolean flipped) {
        double[] ltrb = Buckets.cropLtrb(bucket, width, height);
        double left = flipped ? bucket.width() - ltrb[2] : ltrb[0];
        return new SizeConditioning(height, width, (int) ltrb[1], (int) left, bucket.height(), bucket.width());
    }

    /** The six values in the U-Net's order: (orig_h, orig_w, crop_top, crop_left, target_h, target_w). */
    public int[] values() {
        return new int[] {originalHeight, originalWidth, cropTop, cropLeft, targetHeight, targetWidth};
    }
}
