package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.testing.LogLines;
import tenmin.train.TrainConfig;

/**
 * The reference trainer's remaining flags (its argparse at the guide's commit): each is known — resolved as the
 * reference does (the old spellings), said once to have no effect, or refused by name away from its neutral value —
 * so a kohya config that carries them never fails as an unknown flag.
 */
class ReferenceFlagsTest {
    @TempDir
    Path tmp;
    List<String> guide;

    @BeforeEach
    void files() throws IOException {
        Path model = Files.writeString(tmp.resolve("m.safetensors"), "x");
        Path data = Files.createDirectories(tmp.resolve("data"));
        Path prompts = Files.writeString(data.resolve("p.txt"), "a cat\n");
        guide = TrainArgsTest.guide(model, data, tmp.resolve("out"), prompts);
    }

    private TrainConfig parse(Reporter r, String... extra) {
        List<String> a = new ArrayList<>(guide);
        a.addAll(List.of(extra));
        return TrainArgs.parse(a, r, () -> 1L);
    }

    private static List<String> without(List<String> args, String prefix) {
        List<String> out = new ArrayList<>(args);
        out.removeIf(s -> s.startsWith(prefix));
        return out;
    }

    /** The reference's flags (library/train_util.py, train_network.py, sdxl_train_util.py, deepspeed_utils.py) that
     * tenmin did not know before. */
    static final List<String> ADDED = List.of("async_upload", "cache_info", "caption_extention", "conditioning_data_dir",
            "dataset_class", "debug_dataset", "deepspeed", "disable_mmap_load_safetensors",
            "fp16_master_weights_and_gradients", "huggingface_path_in_repo", "huggingface_repo_id",
            "huggingface_repo_type", "huggingface_repo_visibility", "huggingface_token", "initial_epoch", "initial_step",
            "log_tracker_config", "masked_loss", "offload_optimizer_device", "offload_optimizer_nvme_path",
            "offload_param_device", "offload_param_nvme_path", "resume_from_huggingface", "save_last_n_epochs_state",
            "save_last_n_steps_state", "save_state_to_huggingface", "skip_until_initial_step", "tokenizer_cache_dir",
            "use_8bit_adam", "use_lion_optimizer", "use_safetensors", "v2", "zero3_init_flag", "zero3_save_16bit_model",
            "zero_stage");

    @Test
    void everyReferenceFlagIsKnown() {
        for (String f : ADDED) {
            assertNotNull(TrainFlags.get(f), f);
        }
    }

    @Test
    void oldSpellingsResolveAsTheReference() {
        List<String> noExt = without(guide, "--caption_extension");
        noExt.add("--caption_extention=.cap");
        assertEquals(".cap", TrainArgs.parse(noExt, Reporter.SILENT, () -> 1L).data().captionExtension());
        // the old spelling wins over the new one, as the reference copies it over
        assertEquals(".cap", parse(Reporter.SILENT, "--caption_extention=.cap").data().captionExtension());

        List<String> noOpt = without(guide, "--optimizer_type");
        List<String> adam = new ArrayList<>(noOpt);
        adam.add("--use_8bit_adam");
        LogLines log = new LogLines();
        assertEquals("AdamW", TrainArgs.parse(adam, log, () -> 1L).optim().type());
        assertEquals(1, log.count("WARNING", "AdamW8bit runs as AdamW"), log.lines().toString());   // the 8-bit one
        List<String> lion = new ArrayList<>(noOpt);
        lion.add("--use_lion_optimizer");
        assertEquals("Lion", TrainArgs.parse(lion, Reporter.SILENT, () -> 1L).optim().type());
        InputException both = assertThrows(InputException.class, () -> {
            List<String> a = new ArrayList<>(adam);
            a.add("--use_lion_optimizer");
            TrainArgs.parse(a, Reporter.SILENT, () -> 1L);
        });
        assertTrue(both.getMessage().contains("use_8bit_adam"), both.getMessage());
        InputException withType = assertThrows(InputException.class, () -> parse(Reporter.SILENT, "--use_8bit_adam"));
        assertTrue(withType.getMessage().contains("optimizer_type"), withType.getMessage());
    }

    @Test
    void uploadsAndCachesSayOnceThatTheyDoNothing() {
        LogLines log = new LogLines();
        parse(log, "--huggingface_repo_id=me/lora", "--save_state_to_huggingface", "--disable_mmap_load_safetensors",
                "--tokenizer_cache_dir=" + tmp);
        for (String f : List.of("huggingface_repo_id", "save_state_to_huggingface", "disable_mmap_load_safetensors",
                "tokenizer_cache_dir")) {
            assertEquals(1, log.count("WARNING", "--" + f + " has no effect"), f + ": " + log.lines());
        }
    }

    @Test
    void unsupportedOnesAreRefusedByNameAwayFromNeutral() {
        for (String flag : List.of("--v2", "--deepspeed", "--conditioning_data_dir=masks", "--initial_step=10",
                "--resume_from_huggingface", "--debug_dataset", "--zero_stage=3")) {
            InputException e = assertThrows(InputException.class, () -> parse(Reporter.SILENT, flag), flag);
            String name = flag.substring(2).split("=")[0];
            assertTrue(e.getMessage().contains(name) && e.getMessage().contains("not supported"), e.getMessage());
        }
        parse(Reporter.SILENT, "--zero_stage=2", "--initial_step=0");                  // neutral values pass
    }
}
