package tenmin.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.core.Tasks;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.formats.NpzFile;
import tenmin.models.vae.Vae;
import tenmin.train.data.Buckets;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.data.ImageAugment;
import tenmin.train.data.ImagePlanes;

/**
 * The latents of every training image (trainer-spec §3.6): the image resized and centre-cropped into its
 * bucket, encoded by the VAE in fp32, and one sample of the posterior ({@code mean + std·N(0,1)}, not
 * scaled by 0.13025) frozen for the run; with flip augmentation the mirrored image is encoded too.
 *
 * <p>Modes: {@link Mode#DISK} keeps kohya's {@code <image stem>.npz} next to each image ({@code latents},
 * {@code original_size}, {@code crop_ltrb}, {@code latents_flipped}) and re-reads it at every draw; an
 * existing file is reused when it is valid for this run — it has those arrays with the bucket's latent
 * shape, {@code latents_flipped} when flips are on, no {@code alpha_mask} (kohya's rule) — and, beyond kohya,
 * when it is not older than its image (an edited image is re-encoded). {@link Mode#MEMORY} keeps the
 * latents in memory. {@link Mode#NONE} (no {@code --cache_latents}) encodes at every draw, with a fresh
 * posterior sample, as the reference does without a cache.
 *
 * <p>Posterior samples are seeded from the run's seed and the image (and, without a cache, the draw), so
 * a resumed run sees the same latents.
 */
public final class LatentCache {
    private static final long LATENT_KEY = 0x4C4154454E54L; // "LATENT"
    private static final long AUGMENT_KEY = 0x4155474DL;     // "AUGM"

    /** Where latents are kept. */
    public enum Mode { MEMORY, DISK, NONE }

    private final TrainingData data;
    private final Vae vae;
    private final Scope scope;
    private final Mode mode;
    private final boolean flip;
    private final long seed;
    private final int vaeScale;
    private final DType vaeDtype;
    /** Per-draw crop and colour augmentation ({@link Mode#NONE} only). */
    private ImageAugment augment = ImageAugment.NONE;
    private final Map<Long, float[]> memory = new LinkedHashMap<>();
    private int reused;
    private int encoded;

    private LatentCache(TrainingData data, Vae vae, DType vaeDtype, Scope scope, Mode mode, boolean flip, long seed,
                        int vaeScale) {
        this.vaeDtype = vaeDtype;
        this.data = data;
        this.vae = vae;
        this.scope = scope;
        this.mode = mode;
        this.flip = flip;
        this.seed = seed;
        this.vaeScale = vaeScale;
    }

    /** The mode {@code --cache_latents} / {@code --cache_latents_to_disk} ask for. */
    public static Mode modeOf(TrainConfig.Data d) {
        return d.cacheLatentsToDisk() ? Mode.DISK : d.cacheLatents() ? Mode.MEMORY : Mode.NONE;
    }

    /**
     * Builds the cache before training: every image is encoded (or, on disk, its valid {@code .npz} reused).
     *
     * @param vae      the fp32 VAE (only used here, and at every draw in {@link Mode#NONE})
     * @param vaeDtype the dtype of its weights (images are uploaded in it)
     * @param scope    where the VAE's temporaries go (a child is opened per image)
     * @param vaeScale pixels per latent cell (8)
     * @param progress advanced once per image
     */
    public static LatentCache build(TrainingData data, Vae vae, DType vaeDtype, Scope scope, Mode mode, boolean flip,
                                    long seed, int vaeScale, Reporter.Progress progress) {
        LatentCache c = new LatentCache(data, vae, vaeDtype, scope, mode, flip, seed, vaeScale);
        if (mode == Mode.NONE) {
            return c;
        }
        List<Integer> todo = new ArrayList<>();
        for (int i = 0; i < data.imageCount(); i++) {
            if (mode == Mode.DISK && c.isValid(npzFor(data.item(i).image()), i)) {
                c.reused++;
                progress.advance(1);
            } else {
                todo.add(i);
            }
        }
        // Decoding and fitting an image took longer than encoding it on a GPU (200 images of 1024x1024 with flip_aug:
        // 46 s, 4.3 images/s, on an H200 machine): worker threads prepare the next images' VAE inputs (both
        // orientations) while the VAE encodes, and one more thread writes the cache files, so the loop's thread only
        // issues the encodes and reads their results.
        int threads = Math.max(1, Math.min(8, Runtime.getRuntime().availableProcessors() - 1));
        ExecutorService pool = Tasks.daemonPool(threads, "tenmin-latent-cache-images");
        ExecutorService writer = Tasks.daemonPool(1, "tenmin-latent-cache-files");
        List<Future<?>> writes = new ArrayList<>();
        try {
            Map<Integer, Future<Inputs>> ahead = new HashMap<>();
            int next = 0;
            for (int k = 0; k < todo.size(); k++) {
                while (next < todo.size() && next < k + 2 * threads) {
                    int item = todo.get(next++);
                    ahead.put(item, pool.submit(() -> c.inputs(item)));
                }
                int item = todo.get(k);
                c.prepare(item, await(ahead.remove(item)), writer, writes);
                progress.advance(1);
            }
            for (Future<?> w : writes) {
                Tasks.await(w, "caching latents");              // a file that could not be written fails the build
            }
        } catch (RuntimeException e) {
            // the images before the failure keep their cache files (a rerun reuses them): their writes finish first
            for (Future<?> w : writes) {
                try {
                    Tasks.await(w, "caching latents");
                } catch (RuntimeException other) {
                    e.addSuppressed(other);
                }
            }
            throw e;
        } finally {
            pool.shutdownNow();
            writer.shutdown();
        }
        return c;
    }

    /** An image's VAE input (3, H, W) in [-1, 1], and its mirror image's when flips are on (else null). */
    private record Inputs(float[] image, float[] flipped) {
    }

    /** The result of a worker, with its exception as it was thrown (an unreadable image: its one-line error). */
    private static Inputs await(Future<Inputs> f) {
        return Tasks.await(f, "caching latents");
    }

    public Mode mode() {
        return mode;
    }

    /** Images whose cache file was valid and reused. */
    public int reused() {
        return reused;
    }

    /** Images encoded by the VAE while building. */
    public int encoded() {
        return encoded;
    }

    /** Bytes of latents held in memory. */
    public long memoryBytes() {
        long n = 0;
        for (float[] v : memory.values()) {
            n += 4L * v.length;
        }
        return n;
    }

    /** The cache file of an image: the image path with its extension replaced by {@code .npz}. */
    public static Path npzFor(Path image) {
        String name = image.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return image.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".npz");
    }

    /**
     * The latents (C, h, w) of image {@code item}, mirrored or not, unscaled.
     *
     * @param drawSeed seeds the posterior sample when there is no cache (ignored otherwise)
     */
    public float[] latents(int item, boolean flipped, long drawSeed) {
        return switch (mode) {
            case MEMORY -> memory.get(key(item, flipped));
            case DISK -> readDisk(item, flipped);
            case NONE -> encode(item, flipped, drawSeed);
        };
    }

    private static long key(int item, boolean flipped) {
        return 2L * item + (flipped ? 1 : 0);
    }

    /**
     * Encodes image {@code item} (and its mirror image with flip_aug) into the cache: both encodes are issued before
     * either result is read, so a GPU runs the second while the host waits for the first; on disk the file is written
     * by {@code writer} (its future added to {@code writes}).
     */
    private void prepare(int item, Inputs in, ExecutorService writer, List<Future<?>> writes) {
        float[] lat;
        float[] latFlipped = null;
        try (Scope s = scope.child("encode " + data.item(item).image().getFileName())) {
            Tensor a = encodeIssued(s, item, in.image(), false, 0);
            Tensor b = flip ? encodeIssued(s, item, in.flipped(), true, 0) : null;
            lat = finite(item, a.toHost());
            if (b != null) {
                latFlipped = finite(item, b.toHost());
            }
        }
        if (mode == Mode.DISK) {
            float[] l = lat;
            float[] lf = latFlipped;
            writes.add(writer.submit(() -> writeNpz(npzFor(data.item(item).image()), item, l, lf)));
        } else {
            memory.put(key(item, false), lat);
            if (flip) {
                memory.put(key(item, true), latFlipped);
            }
        }
        encoded++;
    }

    /** The image of {@code item} decoded, resized and cropped to its bucket (any thread). */
    private ImagePlanes fitted(int item) {
        return ImagePlanes.read(data.item(item).image()).fitToBucket(data.assignment(item));
    }

    /** {@link #fitted} as VAE inputs, the mirror image's too with flip_aug (any thread). */
    private Inputs inputs(int item) {
        ImagePlanes planes = fitted(item);
        return new Inputs(planes.toVaeInput(), flip ? planes.flipHorizontal().toVaeInput() : null);
    }

    /** The latent shape of a bucket: (C, bucketH / 8, bucketW / 8). */
    public int[] latentShape(Buckets.Reso b) {
        return new int[] {vae.config().embedDim(), b.height() / vaeScale, b.width() / vaeScale};
    }

    private long[] latentShape(int item) {
        int[] s = latentShape(data.assignment(item).bucket());
        return new long[] {s[0], s[1], s[2]};
    }

    /** kohya's {@code is_disk_cached_latents_is_expected}, plus: not older than the image. */
    boolean isValid(Path npz, int item) {
        if (!Files.isRegularFile(npz)) {
            return false;
        }
        try {
            if (Files.getLastModifiedTime(npz).compareTo(Files.getLastModifiedTime(data.item(item).image())) < 0) {
                return false;
            }
            Map<String, NpzFile.Array> a = NpzFile.read(npz);
            long[] shape = latentShape(item);
            if (!a.containsKey("latents") || !a.containsKey("original_size") || !a.containsKey("crop_ltrb")
                    || a.containsKey("alpha_mask") || !Arrays.equals(a.get("latents").shape(), shape)) {
                return false;
            }
            return !flip || (a.containsKey("latents_flipped") && Arrays.equals(a.get("latents_flipped").shape(), shape));
        } catch (InputException | IOException e) {
            return false; // unreadable: rebuilt
        }
    }

    private float[] readDisk(int item, boolean flipped) {
        Path npz = npzFor(data.item(item).image());
        Map<String, NpzFile.Array> a = NpzFile.read(npz);
        NpzFile.Array lat = a.get(flipped ? "latents_flipped" : "latents");
        if (lat == null || !Arrays.equals(lat.shape(), latentShape(item))) {
            throw new InputException(npz + ": latent cache changed during training (no valid \""
                    + (flipped ? "latents_flipped" : "latents") + "\"); delete it and restart");
        }
        return lat.floats();
    }

    private void writeNpz(Path npz, int item, float[] lat, float[] latFlipped) {
        DreamBoothDataset.Item it = data.item(item);
        Buckets.Assignment a = data.assignment(item);
        long[] shape = latentShape(item);
        Map<String, NpzFile.Array> arrays = new LinkedHashMap<>();
        arrays.put("latents", NpzFile.Array.ofFloats(lat, shape));
        arrays.put("original_size", NpzFile.Array.ofLongs(new long[] {it.width(), it.height()}, 2));
        arrays.put("crop_ltrb", NpzFile.Array.ofDoubles(Buckets.cropLtrb(a.bucket(), it.width(), it.height()), 4));
        if (latFlipped != null) {
            arrays.put("latents_flipped", NpzFile.Array.ofFloats(latFlipped, shape));
        }
        try {
            NpzFile.write(npz, arrays);
        } catch (IOException e) {
            throw new UncheckedIOException(npz + ": cannot write the latent cache", e);
        }
    }

    /**
     * Per-draw {@code --random_crop} / {@code --color_aug} (a cache built with {@link Mode#NONE} only: cached latents
     * are one crop and one colouring for the whole run, which the reference refuses too).
     */
    public LatentCache withAugment(ImageAugment a) {
        if (a.any() && mode != Mode.NONE) {
            throw new IllegalStateException("image augmentation needs a run without cached latents");
        }
        augment = a;
        return this;
    }

    /** Decodes, fits (augmented per draw when asked), mirrors when asked, encodes, samples the posterior; (C, h, w). */
    private float[] encode(int item, boolean flipped, long drawSeed) {
        ImagePlanes planes = augment.any()
                ? augment.apply(ImagePlanes.read(data.item(item).image()), data.assignment(item),
                        Rng.derive(seed, AUGMENT_KEY, item, drawSeed))
                : fitted(item);
        float[] input = (flipped ? planes.flipHorizontal() : planes).toVaeInput();
        try (Scope s = scope.child("encode " + data.item(item).image().getFileName())) {
            return finite(item, encodeIssued(s, item, input, flipped, drawSeed).toHost());
        }
    }

    /**
     * Issues the encode of {@code input} (the fitted image, already mirrored when {@code flipped}, as VAE input) and
     * the posterior sample; returns the sample (1, C, h, w), a tensor of {@code s} (the encoder's intermediates are
     * freed in a scope of their own).
     */
    private Tensor encodeIssued(Scope s, int item, float[] input, boolean flipped, long drawSeed) {
        Buckets.Reso b = data.assignment(item).bucket();
        Rng r = mode == Mode.NONE ? Rng.derive(seed, LATENT_KEY, item, flipped ? 1 : 0, drawSeed)
                : Rng.derive(seed, LATENT_KEY, item, flipped ? 1 : 0);
        try (Scope e = s.child(flipped ? "encode flipped" : "encode")) {
            Tensor image = e.fromHost(input, Shape.of(1, 3, b.height(), b.width()), vaeDtype);
            Vae.Posterior posterior = vae.encode(e, image);
            return e.keep(posterior.sample(e, new Generator(r.nextLong())));
        }
    }

    /** {@code latents}, or the one-line error naming the image when the VAE produced NaN or infinite values. */
    private float[] finite(int item, float[] latents) {
        for (float v : latents) {
            if (!Float.isFinite(v)) {
                throw new IllegalStateException(data.item(item).image() + ": the VAE produced NaN or infinite latents"
                        + " (is the checkpoint's VAE broken, or an fp16 VAE without --no_half_vae?)");
            }
        }
        return latents;
    }

    /** Paths of every cache file of the dataset (what {@link Mode#DISK} reads). */
    public List<Path> files() {
        List<Path> out = new ArrayList<>();
        for (DreamBoothDataset.Item it : data.dataset().items()) {
            out.add(npzFor(it.image()));
        }
        return out;
    }
}
