package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.NpzFile;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.testing.TrainRuns;

/**
 * The latent cache (trainer-spec §3.6): kohya's {@code .npz} next to each image, reused when valid, rebuilt
 * when not (wrong latent shape, flipped latents missing with flips on, an alpha mask, unreadable, or older
 * than its image); a cache written by another program with the right layout is read as it is; memory and
 * uncached modes.
 */
class LatentCacheTest {
    private static CpuBackend backend;
    private static Scope root;
    private static SdxlModels models;

    @TempDir
    Path tmp;
    Path data;
    Path images;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        root = Scope.root(backend, "test");
        models = SdxlModels.random(SdxlConfig.tiny(), root, SdxlDtypes.fp32(), 11);
    }

    @AfterAll
    static void stop() {
        models.close();
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
        backend.close();
    }

    @BeforeEach
    void dataset() {
        data = tmp.resolve("data");
        images = TrainRuns.discs(data, "1_disc", 3, Color.BLUE, "disc");
    }

    private LatentCache build(boolean flip, String... flags) {
        TrainConfig cfg = TrainRuns.config(data, tmp.resolve("out"), flags);
        TrainingData td = TrainingData.prepare(cfg, data, 32, Reporter.SILENT);
        return LatentCache.build(td, models.vae(), models.dtypes().vae(), root, LatentCache.modeOf(cfg.data()), flip, 7,
                8, Reporter.SILENT.progress("", 0));
    }

    private LatentCache disk() {
        return build(true, "--cache_latents_to_disk");
    }

    private Path npz(int i) {
        return images.resolve("img" + i + ".npz");
    }

    @Test
    void writesKohyaFilesThenReusesThem() throws IOException {
        LatentCache first = disk();
        assertEquals(3, first.encoded());
        assertEquals(0, first.reused());
        Map<String, NpzFile.Array> a = NpzFile.read(npz(0));
        assertEquals(List.of("latents", "original_size", "crop_ltrb", "latents_flipped"), List.copyOf(a.keySet()));
        assertArrayEquals(new long[] {4, 8, 8}, a.get("latents").shape());
        assertEquals(NpzFile.Kind.I64, a.get("original_size").kind());
        assertArrayEquals(new double[] {64, 64}, a.get("original_size").doubles());
        assertArrayEquals(new double[] {0, 0, 64, 64}, a.get("crop_ltrb").doubles());
        assertFalse(Arrays.equals(first.latents(0, false, 0), first.latents(0, true, 0)), "flipped latents differ");
        assertArrayEquals(a.get("latents").floats(), first.latents(0, false, 0));

        FileTime written = Files.getLastModifiedTime(npz(0));
        LatentCache second = disk();
        assertEquals(0, second.encoded());
        assertEquals(3, second.reused());
        assertEquals(written, Files.getLastModifiedTime(npz(0)), "a valid cache is not rewritten");
        assertArrayEquals(first.latents(2, true, 0), second.latents(2, true, 0));
    }

    @Test
    void rebuildsInvalidFiles() throws IOException {
        disk();
        // 0: the image was edited after the cache was written
        Files.setLastModifiedTime(images.resolve("img0.png"), FileTime.from(Instant.now().plusSeconds(60)));
        // 1: latents of another bucket size
        Map<String, NpzFile.Array> wrong = new LinkedHashMap<>(NpzFile.read(npz(1)));
        wrong.put("latents", NpzFile.Array.ofFloats(new float[4 * 4 * 4], 4, 4, 4));
        NpzFile.write(npz(1), wrong);
        // 2: an alpha mask (kohya treats the cache as made for --alpha_mask)
        Map<String, NpzFile.Array> masked = new LinkedHashMap<>(NpzFile.read(npz(2)));
        masked.put("alpha_mask", NpzFile.Array.ofFloats(new float[64 * 64], 64, 64));
        NpzFile.write(npz(2), masked);
        LatentCache c = disk();
        assertEquals(3, c.encoded());
        assertEquals(0, c.reused());
        assertFalse(NpzFile.read(npz(2)).containsKey("alpha_mask"));
        assertArrayEquals(new long[] {4, 8, 8}, NpzFile.read(npz(1)).get("latents").shape());

        // unreadable files are rebuilt too
        Files.writeString(npz(0), "garbage");
        assertEquals(1, disk().encoded());
    }

    @Test
    void flippedLatentsAreRequiredOnlyWithFlips() throws IOException {
        disk();
        Map<String, NpzFile.Array> noFlip = new LinkedHashMap<>(NpzFile.read(npz(0)));
        noFlip.remove("latents_flipped");
        NpzFile.write(npz(0), noFlip);
        assertEquals(0, build(false, "--cache_latents_to_disk").encoded(), "without flips the file is valid");
        assertEquals(1, disk().encoded(), "with flips it is rebuilt");
    }

    @Test
    void readsCachesWrittenByOtherTools() throws IOException {
        // the layout kohya's numpy.savez produces, with values we choose: reused and read as they are
        float[] lat = new float[4 * 8 * 8];
        Arrays.fill(lat, 0.25f);
        float[] flipped = new float[lat.length];
        Arrays.fill(flipped, -0.5f);
        for (int i = 0; i < 3; i++) {
            Map<String, NpzFile.Array> m = new LinkedHashMap<>();
            m.put("latents", NpzFile.Array.ofFloats(lat, 4, 8, 8));
            m.put("original_size", NpzFile.Array.ofLongs(new long[] {64, 64}, 2));
            m.put("crop_ltrb", NpzFile.Array.ofDoubles(new double[] {0, 0, 64, 64}, 4));
            m.put("latents_flipped", NpzFile.Array.ofFloats(flipped, 4, 8, 8));
            NpzFile.write(npz(i), m);
        }
        LatentCache c = disk();
        assertEquals(3, c.reused());
        assertArrayEquals(lat, c.latents(1, false, 0));
        assertArrayEquals(flipped, c.latents(1, true, 0));
    }

    @Test
    void anImageThatBecameUnreadableFailsWithItsPathWhereverItWasDecoded() throws IOException {
        TrainConfig cfg = TrainRuns.config(data, tmp.resolve("out"), "--cache_latents_to_disk");
        TrainingData td = TrainingData.prepare(cfg, data, 32, Reporter.SILENT);
        Path broken = td.item(1).image();
        Files.write(broken, new byte[] {1, 2, 3});    // after the scan: decoded by a worker thread while caching
        tenmin.core.InputException e = org.junit.jupiter.api.Assertions.assertThrows(tenmin.core.InputException.class,
                () -> LatentCache.build(td, models.vae(), models.dtypes().vae(), root, LatentCache.Mode.DISK, true, 7, 8,
                        Reporter.SILENT.progress("", 0)));
        assertTrue(e.getMessage().startsWith(broken.toString()), e.getMessage());
        assertTrue(Files.exists(npz(0)), "the image before it was cached");
        assertFalse(Files.exists(npz(1)));
    }

    @Test
    void memoryAndUncachedModes() {
        LatentCache memory = build(true);
        assertEquals(LatentCache.Mode.MEMORY, memory.mode());
        assertEquals(3, memory.encoded());
        assertFalse(Files.exists(npz(0)), "memory mode writes no files");
        assertEquals(3L * 2 * 4 * 8 * 8 * 4, memory.memoryBytes());
        // the cached sample is the same posterior draw on disk and in memory
        assertArrayEquals(memory.latents(1, true, 0), disk().latents(1, true, 0));

        TrainConfig cfg = TrainRuns.config(data, tmp.resolve("out"));
        TrainConfig.Data d = cfg.data();
        TrainConfig.Data none = new TrainConfig.Data(d.width(), d.height(), d.enableBucket(), d.minBucketReso(),
                d.maxBucketReso(), d.bucketResoSteps(), d.bucketNoUpscale(), d.captionExtension(), d.captions(),
                d.subsets(), d.cacheTextEncoderOutputs(), d.maxTokenLength(), d.flipAug(), d.alphaMask(),
                false, false, false, false, false,
                d.vaeBatchSize(), d.strict());
        assertEquals(LatentCache.Mode.NONE, LatentCache.modeOf(none));
        TrainingData td = TrainingData.prepare(cfg, data, 32, Reporter.SILENT);
        LatentCache uncached = LatentCache.build(td, models.vae(), models.dtypes().vae(), root, LatentCache.Mode.NONE,
                true, 7, 8, Reporter.SILENT.progress("", 0));
        assertEquals(0, uncached.encoded());
        // every draw samples the posterior afresh (seeded by the draw)
        assertArrayEquals(uncached.latents(0, false, 1), uncached.latents(0, false, 1));
        assertFalse(Arrays.equals(uncached.latents(0, false, 1), uncached.latents(0, false, 2)));
    }
}
