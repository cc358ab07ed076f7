package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;
import tenmin.train.data.Buckets;
import tenmin.train.data.EpochPlanner;

/**
 * A {@code --dataset_config} with two {@code [[datasets]]} (kohya's {@code DatasetGroup}): each dataset buckets and
 * batches its own images at its own resolution and batch size and balances its own regularisation images; an epoch
 * shuffles the micro-batches of both; {@code ss_datasets} has one entry per dataset.
 *
 * <p>The datasets (64x64 images unless said): dataset 1 at resolution 64, batch_size 3, no buckets: {@code discs} (5
 * images × 2 repeats) and the regularisation folder {@code reg} (2 images, balanced to 10 draws: 5 each). Dataset 2
 * at resolution 96 with buckets (of area ≤ 96², sides 64..128 in steps of 32: 96x96, 64x128, 128x64) and the command
 * line's batch size 2: {@code discs} again (× 1), {@code squares} (3 × 1) and {@code wide} (3 images of 128x64, × 3).
 */
class MultiDatasetTest {
    @TempDir
    static Path tmp;
    static Path discs;
    static Path reg;
    static Path squares;
    static Path wide;
    static Path straight;
    static Trainer.Result straightRun;

    // per dataset, per bucket: entries, the bucket, the batch size (computed by hand from the class comment)
    static final int DATASET1_ENTRIES = 5 * 2 + 2 * 5;                 // 64x64, batch 3
    static final int DATASET2_SQUARE_ENTRIES = 5 + 3;                  // 96x96, batch 2
    static final int DATASET2_WIDE_ENTRIES = 3 * 3;                    // 128x64, batch 2
    static final int MICRO_BATCHES = ceil(DATASET1_ENTRIES, 3) + ceil(DATASET2_SQUARE_ENTRIES, 2)
            + ceil(DATASET2_WIDE_ENTRIES, 2);                          // 7 + 4 + 5 = 16

    static int ceil(int a, int b) {
        return (a + b - 1) / b;
    }

    @BeforeAll
    static void uninterrupted() throws IOException {
        discs = TrainRuns.discs(tmp, "discs", 5, Color.RED, "ohwx, red disc");
        reg = TrainRuns.squares(tmp, "reg", 2, Color.GRAY, Color.WHITE, "a grey square");
        squares = TrainRuns.squares(tmp, "squares", 3, Color.BLUE, Color.WHITE, "a blue square");
        wide = tmp.resolve("wide");
        Files.createDirectories(wide);
        for (int i = 0; i < 3; i++) {
            BufferedImage img = new BufferedImage(128, 64, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = img.createGraphics();
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, 128, 64);
            g.setColor(Color.GREEN);
            g.fillRect(10 + 8 * i, 12, 90, 40);
            g.dispose();
            ImageIO.write(img, "png", wide.resolve("w" + i + ".png").toFile());
            Files.writeString(wide.resolve("w" + i + ".txt"), "a green bar, wide");
        }
        straight = tmp.resolve("straight");
        straightRun = TrainRuns.train(config(straight), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, straightRun.outcome(), straightRun.message());
    }

    static String toml(String dataset2Extra) {
        return """
                [general]
                caption_extension = ".txt"
                [[datasets]]
                resolution = 64
                batch_size = 3
                enable_bucket = false
                  [[datasets.subsets]]
                  image_dir = "%s"
                  num_repeats = 2
                  [[datasets.subsets]]
                  image_dir = "%s"
                  is_reg = true
                [[datasets]]
                resolution = [96, 96]
                %s
                  [[datasets.subsets]]
                  image_dir = "%s"
                  [[datasets.subsets]]
                  image_dir = "%s"
                  [[datasets.subsets]]
                  image_dir = "%s"
                  num_repeats = 3
                """.formatted(discs, reg, dataset2Extra, discs, squares, wide);
    }

    /** One epoch (16 micro-batches, accumulation 2: 8 steps); the command line's batch size 2 reaches dataset 2. */
    static TrainConfig config(Path out, String... extra) {
        return configFrom(out, toml(""), extra);
    }

    static TrainConfig configFrom(Path out, String datasetToml, String... extra) {
        try {
            Path file = Files.writeString(Files.createDirectories(out.getParent()).resolve(out.getFileName() + ".toml"),
                    datasetToml);
            List<String> args = new ArrayList<>(List.of("--dataset_config=" + file, "--max_train_epochs=1",
                    "--save_every_n_steps=100"));
            args.addAll(List.of(extra));
            return tenmin.cli.TrainTestConfigs.parse(TrainRuns.args(tmp.resolve("unused"), out,
                    args.toArray(String[]::new)));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void eachDatasetHasItsOwnResolutionBucketsAndBatchSize() {
        TrainConfig cfg = config(tmp.resolve("parse"));
        List<TrainConfig.Dataset> ds = cfg.datasets();
        assertEquals(2, ds.size());
        assertEquals(List.of(64, 64, 3, 0), List.of(ds.get(0).width(), ds.get(0).height(), ds.get(0).batchSize(),
                ds.get(0).enableBucket() ? 1 : 0));
        // dataset 2 falls back to the command line (TrainRuns: batch 2, buckets on), not to dataset 1's options
        assertEquals(List.of(96, 96, 2, 1), List.of(ds.get(1).width(), ds.get(1).height(), ds.get(1).batchSize(),
                ds.get(1).enableBucket() ? 1 : 0));
        assertEquals(3, cfg.loop().trainBatchSize(), "the first dataset's batch_size is --train_batch_size");
        assertEquals(List.of(discs, reg), ds.get(0).subsets().stream().map(s -> s.dir()).toList());
        assertEquals(List.of(discs, squares, wide), ds.get(1).subsets().stream().map(s -> s.dir()).toList());
        // the memory plan's micro-batch: dataset 2's 2 × 96² pixels over dataset 1's 3 × 64²
        assertEquals(ds.get(1), TrainSetup.plannedDataset(cfg));
    }

    @Test
    void everyMicroBatchHoldsOneDatasetsImagesAtItsBucketAndBatchSize() {
        TrainConfig cfg = config(tmp.resolve("plan"));
        TrainingData td = TrainingData.prepare(cfg, null, 32, Reporter.SILENT);
        assertEquals(2, td.datasetCount());
        assertEquals(MICRO_BATCHES, td.planner().microBatchesPerEpoch());
        assertEquals(ceil(MICRO_BATCHES, 2), td.planner().stepsPerEpoch());
        List<List<Integer>> orders = new ArrayList<>();
        for (int epoch = 0; epoch < 2; epoch++) {
            List<EpochPlanner.MicroBatch> plan = td.planner().plan(epoch);
            assertEquals(MICRO_BATCHES, plan.size());
            Map<Integer, Integer> draws = new HashMap<>();
            Map<String, Integer> batchesPerBucket = new HashMap<>();
            List<Integer> order = new ArrayList<>();
            for (EpochPlanner.MicroBatch mb : plan) {
                int dataset = td.datasetOf(mb);
                order.add(dataset);
                Buckets.Reso bucket = td.bucketOf(mb);
                int batch = dataset == 0 ? 3 : 2;
                assertTrue(mb.entries().length >= 1 && mb.entries().length <= batch, "batch of " + mb.entries().length);
                for (int item : mb.entries()) {
                    assertEquals(dataset, td.datasetOfItem(item), "a micro-batch never mixes datasets");
                    assertEquals(bucket, td.assignment(item).bucket(), "a micro-batch never mixes buckets");
                    Path dir = td.item(item).image().getParent();
                    Buckets.Reso expected = dataset == 0 ? new Buckets.Reso(64, 64)
                            : dir.equals(wide) ? new Buckets.Reso(128, 64) : new Buckets.Reso(96, 96);
                    assertEquals(expected, bucket, td.item(item).image().toString());
                    draws.merge(item, 1, Integer::sum);
                }
                batchesPerBucket.merge(dataset + ":" + bucket, 1, Integer::sum);
            }
            assertEquals(Map.of("0:" + new Buckets.Reso(64, 64), ceil(DATASET1_ENTRIES, 3),
                    "1:" + new Buckets.Reso(96, 96), ceil(DATASET2_SQUARE_ENTRIES, 2),
                    "1:" + new Buckets.Reso(128, 64), ceil(DATASET2_WIDE_ENTRIES, 2)), batchesPerBucket);
            // each image as often as its repeats: discs 2 in dataset 1 and 1 in dataset 2, reg balanced to 5, wide 3
            assertEquals(5 + 2 + 5 + 3 + 3, draws.size(), "every image of both datasets drawn");
            for (Map.Entry<Integer, Integer> e : draws.entrySet()) {
                int dataset = td.datasetOfItem(e.getKey());
                Path dir = td.item(e.getKey()).image().getParent();
                int expected = dir.equals(wide) ? 3 : dir.equals(reg) ? 5 : dir.equals(discs) && dataset == 0 ? 2 : 1;
                assertEquals(expected, e.getValue(), td.item(e.getKey()).image() + " in dataset " + (dataset + 1));
            }
            orders.add(order);
        }
        assertNotEquals(orders.get(0), orders.get(1), "each epoch shuffles the micro-batches of both datasets");
        assertTrue(orders.get(0).subList(0, 7).contains(1), "the datasets' micro-batches are interleaved");
    }

    @Test
    void aRunRecordsBothDatasetsAsTheReference() throws Exception {
        assertEquals(ceil(MICRO_BATCHES, 2), straightRun.steps(), "--max_train_epochs=1: one epoch of 8 steps");
        try (SafetensorsFile f = SafetensorsFile.open(straightRun.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals(Integer.toString(MICRO_BATCHES), m.get("ss_num_batches_per_epoch"));
            assertEquals(Integer.toString(5 * 2 + 5 + 3 + 3 * 3), m.get("ss_num_train_images"));
            assertEquals("2", m.get("ss_num_reg_images"));
            assertEquals(null, m.get("ss_batch_size_per_device"), "the folder-layout keys are not written");
            JsonNode datasets = new ObjectMapper().readTree(m.get("ss_datasets"));
            assertEquals(2, datasets.size());
            List<String> keys = List.of("is_dreambooth", "batch_size_per_device", "num_train_images", "num_reg_images",
                    "resolution", "enable_bucket", "min_bucket_reso", "max_bucket_reso", "tag_frequency",
                    "bucket_info", "subsets");
            for (JsonNode d : datasets) {
                List<String> names = new ArrayList<>();
                d.fieldNames().forEachRemaining(names::add);
                assertEquals(keys, names);
            }
            JsonNode d1 = datasets.get(0);
            assertEquals(3, d1.get("batch_size_per_device").asInt());
            assertEquals(10, d1.get("num_train_images").asInt());
            assertEquals(2, d1.get("num_reg_images").asInt());
            assertEquals("[64,64]", d1.get("resolution").toString());
            assertEquals(false, d1.get("enable_bucket").asBoolean());
            assertTrue(d1.get("bucket_info").isNull(), "no buckets, no bucket_info");
            assertEquals(List.of("discs", "reg"), dirs(d1));
            assertEquals(List.of(5, 2), ints(d1, "img_count"));
            assertEquals(List.of(2, 1), ints(d1, "num_repeats"));
            JsonNode d2 = datasets.get(1);
            assertEquals(2, d2.get("batch_size_per_device").asInt());
            assertEquals(5 + 3 + 9, d2.get("num_train_images").asInt());
            assertEquals(0, d2.get("num_reg_images").asInt());
            assertEquals("[96,96]", d2.get("resolution").toString());
            assertTrue(d2.get("enable_bucket").asBoolean());
            assertEquals(64, d2.get("min_bucket_reso").asInt());
            assertEquals(128, d2.get("max_bucket_reso").asInt());
            JsonNode buckets = d2.get("bucket_info").get("buckets");
            assertEquals(2, buckets.size());
            assertEquals("{\"resolution\":[96,96],\"count\":8}", buckets.get("0").toString());
            assertEquals("{\"resolution\":[128,64],\"count\":9}", buckets.get("1").toString());
            assertEquals(List.of("discs", "squares", "wide"), dirs(d2));
            assertEquals(List.of(5, 3, 3), ints(d2, "img_count"));
            assertEquals(List.of(1, 1, 3), ints(d2, "num_repeats"));
            assertTrue(d2.get("tag_frequency").has("wide") && !d2.get("tag_frequency").has("reg"));
            // merged: training folders only, the second "discs" numbered; tag counts of each folder name once
            assertEquals("{\"discs\": {\"n_repeats\": 2, \"img_count\": 5}, \"discs (2)\": {\"n_repeats\": 1,"
                    + " \"img_count\": 5}, \"squares\": {\"n_repeats\": 1, \"img_count\": 3}, \"wide\": {\"n_repeats\":"
                    + " 3, \"img_count\": 3}}", m.get("ss_dataset_dirs"));
            JsonNode tags = new ObjectMapper().readTree(m.get("ss_tag_frequency"));
            List<String> tagDirs = new ArrayList<>();
            tags.fieldNames().forEachRemaining(tagDirs::add);
            assertEquals(List.of("discs", "reg", "squares", "wide"), tagDirs);
            assertEquals(5, tags.get("discs").get("ohwx").asInt());
        }
    }

    private static List<String> dirs(JsonNode dataset) {
        List<String> out = new ArrayList<>();
        dataset.get("subsets").forEach(s -> out.add(s.get("image_dir").asText()));
        return out;
    }

    private static List<Integer> ints(JsonNode dataset, String key) {
        List<Integer> out = new ArrayList<>();
        dataset.get("subsets").forEach(s -> out.add(s.get(key).asInt()));
        return out;
    }

    @Test
    void aStoppedAndResumedRunEqualsTheUninterruptedOne() {
        Path out = tmp.resolve("stopped");
        Trainer[] holder = new Trainer[1];
        Trainer.Result stopped = TrainRuns.train(holder, config(out), ResumeTest.stopAfterMicroBatch(holder, 7));
        assertEquals(Trainer.Outcome.STOPPED, stopped.outcome(), stopped.message());
        Trainer.Result resumed = TrainRuns.train(config(out, "--resume=" + stopped.lastState()), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, resumed.outcome(), resumed.message());
        assertEquals(straightRun.steps(), resumed.steps());
        TrainRuns.assertSameLora(straightRun.lastLora(), resumed.lastLora());
    }

    /** discs is in both datasets, at 64x64 and at 96x96: one .npz beside each image cannot hold both. */
    @Test
    void anImageInTwoBucketsCannotBeCachedOnDisk() {
        TrainConfig cfg = config(tmp.resolve("disk"), "--cache_latents_to_disk");
        InputException x = assertThrows(InputException.class, () -> TrainingData.prepare(cfg, null, 32,
                Reporter.SILENT));
        assertTrue(x.getMessage().startsWith("--cache_latents_to_disk: " + discs.resolve("img0.png")
                + " is in [[datasets]] 1 at 64x64 and in [[datasets]] 2 at 96x96"), x.getMessage());
        TrainingData.prepare(config(tmp.resolve("memory")), null, 32, Reporter.SILENT);   // in memory: fine
    }

    @Test
    void aLaterDatasetIsPartOfTheRecipe() {
        TrainConfig a = config(tmp.resolve("recipe-a"));
        TrainConfig b = configFrom(tmp.resolve("recipe-b"), toml("batch_size = 1"));
        assertEquals(a.flags().get("train_batch_size"), b.flags().get("train_batch_size"));
        assertNotEquals(Resume.digest(Resume.recipe(a)), Resume.digest(Resume.recipe(b)));
        assertTrue(Resume.recipeText(Resume.recipe(b)).contains("dataset_config[2]="));
    }

    @Test
    void whatMustAgreeAcrossDatasetsIsRefusedNamingTheFileAndKey() {
        Map<String, String> refused = Map.of(
                "flip_aug = false", "[[datasets]] 2: flip_aug is false but --flip_aug is true",
                "random_crop = true", "[[datasets]] 2: random_crop is true but --random_crop is false",
                "network_multiplier = 0.5", "[[datasets]] 2: network_multiplier",
                "batch_size = 0", "[[datasets]] 2: batch_size",
                "bucket_reso_steps = 12", "[[datasets]] 2: bucket_reso_steps",
                "max_bucket_reso = 80", "[[datasets]] 2: --resolution 96,96 lies outside the bucket range [64, 80]");
        for (Map.Entry<String, String> e : refused.entrySet()) {
            Path out = tmp.resolve("refused");
            InputException x = assertThrows(InputException.class, () -> configFrom(out, toml(e.getKey())), e.getKey());
            assertTrue(x.getMessage().contains(out.getParent().resolve("refused.toml") + ": " + e.getValue()),
                    e.getKey() + ": " + x.getMessage());
            assertEquals(1, x.getMessage().lines().count(), x.getMessage());
        }
    }
}
