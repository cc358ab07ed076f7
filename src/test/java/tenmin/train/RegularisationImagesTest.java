package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.TrainRuns;

/**
 * {@code --reg_data_dir} through a whole run: an epoch draws the training images × repeats and as many
 * regularisation draws, and {@code --prior_loss_weight} weighs the latter (0: their micro-batches have loss 0);
 * the saved file records them as the reference does.
 */
class RegularisationImagesTest {
    @TempDir
    Path tmp;

    @Test
    void anEpochDrawsBothAndThePriorWeightReachesTheLoss() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_ohwx disc", 4, Color.RED, "ohwx, red disc, white background");
        Path reg = tmp.resolve("reg");
        TrainRuns.squares(reg, "1_square", 3, Color.BLUE, Color.WHITE, "a blue square");
        // 8 training draws; the 3 regularisation images balanced to 3 + 3 + 2 = 8; one image per step: 16 steps
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("out"), "--reg_data_dir=" + reg,
                "--prior_loss_weight=0", "--train_batch_size=1", "--gradient_accumulation_steps=1",
                "--max_train_epochs=1", "--save_every_n_steps=100"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        assertEquals(16, r.losses().size());
        long zero = r.losses().stream().filter(l -> l == 0f).count();
        assertEquals(8, zero, "the regularisation draws weigh 0: " + r.losses());
        assertTrue(r.losses().stream().filter(l -> l != 0f).allMatch(l -> l > 0 && Float.isFinite(l)), r.losses().toString());
        try (SafetensorsFile f = SafetensorsFile.open(r.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals("8", m.get("ss_num_train_images"));
            assertEquals("3", m.get("ss_num_reg_images"));
            assertEquals("16", m.get("ss_num_batches_per_epoch"));
            assertEquals("{\"1_square\": {\"n_repeats\": 1, \"img_count\": 3}}", m.get("ss_reg_dataset_dirs"));
            assertTrue(m.get("ss_tag_frequency").contains("\"1_square\": {\"a blue square\": 3}"),
                    m.get("ss_tag_frequency"));
        }
    }
}
