/**
 * The dataset side of training, without any network: kohya's DreamBooth folder layout, captions and
 * their per-draw shuffling, aspect-ratio buckets, resize and centre crop, SDXL size/crop conditioning,
 * and the seeded epoch plan of single-bucket micro-batches.
 * Imports {@code tenmin.train} (Rng), {@code tenmin.core}; uses {@code javax.imageio}.
 */
package tenmin.train.data;
