package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.LogLines;
import tenmin.testing.TrainRuns;
import tenmin.train.data.CaptionOptions;
import tenmin.train.data.DreamBoothDataset;

/**
 * {@code --dataset_config} (kohya's dataset TOML, DreamBooth form): options from the subset, its dataset,
 * [general], then the command line; image folders with their own repeats, class tokens, regularisation flag and
 * caption options; a run trained from it records {@code ss_datasets} as the reference does.
 */
class DatasetConfigTest {
    @TempDir
    Path tmp;

    private Path config(String text) throws IOException {
        return Files.writeString(tmp.resolve("dataset.toml"), text);
    }

    private TrainConfig parse(Reporter r, String... extra) {
        return tenmin.cli.TrainTestConfigs.parse(TrainRuns.args(tmp.resolve("unused"), tmp.resolve("out"), extra), r);
    }

    @Test
    void optionsFallBackFromSubsetToDatasetToGeneralToTheCommandLine() throws IOException {
        Path discs = TrainRuns.discs(tmp, "discs", 3, Color.RED, "ohwx, red disc");
        Path squares = TrainRuns.squares(tmp, "squares", 2, Color.BLUE, Color.WHITE, "a blue square");
        Path cfg = config("""
                [general]
                resolution = 64
                class_tokens = "thing"
                shuffle_caption = true
                keep_tokens = 1
                caption_extension = ".txt"

                [[datasets]]
                batch_size = 3
                enable_bucket = false

                  [[datasets.subsets]]
                  image_dir = "%s"
                  num_repeats = 4
                  class_tokens = "ohwx disc"
                  keep_tokens = 2

                  [[datasets.subsets]]
                  image_dir = "%s"
                  is_reg = true
                  caption_prefix = "photo,"
                """.formatted(discs, squares));
        LogLines log = new LogLines();
        TrainConfig c = parse(log, "--dataset_config=" + cfg, "--resolution=128", "--caption_dropout_rate=0.1",
                "--dataset_repeats=3");
        assertTrue(log.count("WARNING", "ignoring --train_data_dir") == 1, String.join("\n", log.lines()));
        assertNull(c.paths().trainDataDir());
        assertEquals(64, c.data().width());                                   // [general] over the command line
        assertEquals(3, c.loop().trainBatchSize());                           // batch_size is --train_batch_size
        assertTrue(!c.data().enableBucket());
        List<DreamBoothDataset.SubsetSpec> s = c.data().subsets();
        assertEquals(2, s.size());
        assertEquals(new DreamBoothDataset.SubsetSpec(discs, "discs", 4, "ohwx disc", false, ".txt",
                new CaptionOptions(null, null, true, 2, ",", "", null, 0.1, 0, 0)), s.get(0));
        // num_repeats: the subset's, else --dataset_repeats (the reference's argparse fallback)
        assertEquals(new DreamBoothDataset.SubsetSpec(squares, "squares", 3, "thing", true, ".txt",
                new CaptionOptions("photo,", null, true, 1, ",", "", null, 0.1, 0, 0)), s.get(1));
        assertTrue(c.data().flipAug(), "--flip_aug of the command line (TrainRuns) reaches every subset");
        assertTrue(!c.demo());
    }

    /** token_warmup_min / token_warmup_step per subset, falling back to [general] and then the command line. */
    @Test
    void subsetsSetTheirOwnTokenWarmup() throws IOException {
        Path discs = TrainRuns.discs(tmp, "discs", 1, Color.RED, "ohwx, red disc");
        Path squares = TrainRuns.squares(tmp, "squares", 1, Color.BLUE, Color.WHITE, "a blue square");
        Path cfg = config("""
                [general]
                token_warmup_step = 0.5
                [[datasets]]
                  [[datasets.subsets]]
                  image_dir = "%s"
                  token_warmup_min = 3
                  token_warmup_step = 10
                  [[datasets.subsets]]
                  image_dir = "%s"
                """.formatted(discs, squares));
        List<DreamBoothDataset.SubsetSpec> s = parse(Reporter.SILENT, "--dataset_config=" + cfg,
                "--token_warmup_min=2").data().subsets();
        assertEquals(3, s.get(0).captions().tokenWarmupMin());
        assertEquals(10.0, s.get(0).captions().tokenWarmupStep(), 0);
        assertEquals(2, s.get(1).captions().tokenWarmupMin(), "the command line's");
        assertEquals(0.5, s.get(1).captions().tokenWarmupStep(), 0, "[general]'s");
        Path negative = config("[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"" + discs
                + "\"\ntoken_warmup_step = -1\n");
        InputException x = assertThrows(InputException.class, () -> parse(Reporter.SILENT, "--dataset_config=" + negative));
        assertTrue(x.getMessage().startsWith(negative + ": [[datasets.subsets]] 1: token_warmup_step: "), x.getMessage());
    }

    @Test
    void whatTenminCannotTrainIsRefusedNamingTheKey() throws IOException {
        Path discs = TrainRuns.discs(tmp, "discs", 1, Color.RED, "ohwx");
        String subset = "[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"" + discs + "\"\n";
        Map<String, String> refused = Map.of(
                "[general]\nfrobnicate = 1\n" + subset, "unknown key frobnicate",
                subset + "color_aug = true\n", "color_aug",
                subset + "[[datasets]]\nflip_aug = false\n[[datasets.subsets]]\nimage_dir = \"" + discs + "\"\n",
                "[[datasets]] 2: flip_aug is false",
                subset + "flip_aug = false\n[[datasets.subsets]]\nimage_dir = \"" + discs + "\"\nflip_aug = true\n",
                "tenmin flips every image or none",
                "[[datasets]]\nnetwork_multiplier = 0.5\n[[datasets.subsets]]\nimage_dir = \"x\"\n", "network_multiplier",
                "[[datasets]]\n[[datasets.subsets]]\nmetadata_file = \"m.json\"\n", "metadata_file",
                "[[datasets]]\n[[datasets.subsets]]\nnum_repeats = 2\n", "image_dir",
                subset + "num_repeats = 0\n", "num_repeats",
                subset + "alpha_mask = true\n[[datasets.subsets]]\nimage_dir = \"" + discs + "\"\n",
                "masks the loss of every image or none");
        for (Map.Entry<String, String> e : refused.entrySet()) {
            Path cfg = config(e.getKey());
            InputException x = assertThrows(InputException.class, () -> parse(Reporter.SILENT, "--dataset_config=" + cfg),
                    e.getKey());
            assertTrue(x.getMessage().contains(e.getValue()) && x.getMessage().contains(cfg.toString()),
                    e.getValue() + ": " + x.getMessage());
        }
        assertThrows(InputException.class, () -> parse(Reporter.SILENT, "--dataset_config=" + tmp.resolve("none.toml")));
    }

    /** A run from a dataset config: both subsets drawn; ss_datasets as the reference's user-config branch. */
    @Test
    void aRunRecordsItsDatasetsAsTheReference() throws Exception {
        Path discs = TrainRuns.discs(tmp, "discs", 4, Color.RED, "ohwx, red disc");
        Path squares = TrainRuns.squares(tmp, "squares", 2, Color.BLUE, Color.WHITE, "a blue square");
        Path cfg = config("""
                [general]
                caption_extension = ".txt"
                [[datasets]]
                resolution = [64, 64]
                  [[datasets.subsets]]
                  image_dir = "%s"
                  num_repeats = 2
                  class_tokens = "ohwx"
                  [[datasets.subsets]]
                  image_dir = "%s"
                  is_reg = true
                """.formatted(discs, squares));
        Trainer.Result r = TrainRuns.train(tenmin.cli.TrainTestConfigs.parse(TrainRuns.args(tmp.resolve("unused"),
                tmp.resolve("out"), "--dataset_config=" + cfg, "--max_train_steps=1", "--save_every_n_steps=100")),
                Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        try (SafetensorsFile f = SafetensorsFile.open(r.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals("8", m.get("ss_num_train_images"));
            assertEquals("2", m.get("ss_num_reg_images"));
            assertNull(m.get("ss_resolution"), "the folder-layout keys are not written");
            JsonNode datasets = new ObjectMapper().readTree(m.get("ss_datasets"));
            assertEquals(1, datasets.size());
            JsonNode d = datasets.get(0);
            assertEquals(2, d.get("batch_size_per_device").asInt());
            assertEquals(8, d.get("num_train_images").asInt());
            assertEquals(2, d.get("num_reg_images").asInt());
            assertEquals("[64,64]", d.get("resolution").toString());
            assertTrue(d.get("bucket_info").get("buckets").isObject(), "bucket_info nested as an object");
            JsonNode s0 = d.get("subsets").get(0);
            assertEquals("discs", s0.get("image_dir").asText());
            assertEquals(2, s0.get("num_repeats").asInt());
            assertEquals(4, s0.get("img_count").asInt());
            assertEquals("ohwx", s0.get("class_tokens").asText());
            assertTrue(d.get("subsets").get(1).get("is_reg").asBoolean());
            assertTrue(d.get("subsets").get(1).get("class_tokens").isNull());
            assertEquals("{\"discs\": {\"n_repeats\": 2, \"img_count\": 4}}", m.get("ss_dataset_dirs"));
        }
    }
}
