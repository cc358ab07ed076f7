package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.Color;
import java.nio.file.Path;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Numerics;
import tenmin.testing.TorchBackendTests;
import tenmin.testing.TrainRuns;

/**
 * The loop uses only the engine's Backend/Functional API, so it runs unchanged on the libtorch backend: the
 * same short run on the torch backend (CPU libtorch, fp32) has the cpu backend's micro-batch losses (1e-4
 * relative) and ends with its LoRA within float tolerance. The optimizer here is plain SGD, whose update is
 * linear in the gradient: ClybW's per-row normalisation turns a near-zero gradient into ±1 per element, so
 * summation-order differences between backends can flip whole updates of such elements.
 */
@Tag("torch")
class TrainerTorchTest extends TorchBackendTests {
    @TempDir
    Path tmp;

    @Test
    void shortRunMatchesTheCpuBackend() {
        sameRunOnBothBackends("--gradient_checkpointing");
    }

    /**
     * The options beyond the guide whose work runs on the device: the Huber loss (per-image thresholds broadcast),
     * per-image weights (min-SNR), the v-prediction target, 225-token captions (windows encoded and joined with
     * narrow/cat) and input perturbation.
     */
    @Test
    void optionsBeyondTheGuideMatchTheCpuBackend() {
        sameRunOnBothBackends("--loss_type=huber", "--min_snr_gamma=5", "--v_parameterization", "--max_token_length=225",
                "--ip_noise_gamma=0.1", "--alpha_mask");
    }

    /**
     * LyCORIS's dropouts: the keep-masks drawn on the device (libtorch's int64 kernels computing the cpu backend's
     * counter-based stream), the module coin on the host, the bypass branches where the output is dropped out; and
     * max-norm regularisation (its norms from Gram matrices on the device), with a bound every module exceeds.
     */
    @Test
    void dropoutMatchesTheCpuBackend() {
        sameRunOnBothBackends("--gradient_checkpointing", "--network_dropout=0.2", "--network_args", "preset=full",
                "conv_dim=8", "conv_alpha=4", "algo=locon", "rank_dropout=0.3", "module_dropout=0.2",
                "--scale_weight_norms=1e-5");
    }

    private void sameRunOnBothBackends(String... extra) {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        String[] flags = java.util.stream.Stream.concat(java.util.stream.Stream.of("--max_train_steps=1",
                "--save_every_n_steps=100", "--optimizer_type=SGD", "--learning_rate=0.05", "--unet_lr=0.05",
                "--text_encoder_lr=0.05", "--save_precision=float"), java.util.stream.Stream.of(extra))
                .toArray(String[]::new);
        Trainer.Result cpu = TrainRuns.train(TrainRuns.config(data, tmp.resolve("cpu"), flags), Reporter.SILENT);
        Trainer.Result onTorch = TrainRuns.train(new Trainer[1], TrainRuns.config(data, tmp.resolve("torch"), flags),
                Reporter.SILENT, torch);
        assertEquals(Trainer.Outcome.COMPLETED, onTorch.outcome(), onTorch.message());
        for (int i = 0; i < cpu.losses().size(); i++) {
            assertEquals(cpu.losses().get(i), onTorch.losses().get(i), 1e-4 * cpu.losses().get(i), "loss " + i);
        }
        try (SafetensorsFile a = SafetensorsFile.open(cpu.lastLora());
             SafetensorsFile b = SafetensorsFile.open(onTorch.lastLora())) {
            assertEquals(a.names(), b.names());
            for (String key : a.names()) {
                Numerics.assertClose(key, a.info(key).shape(), a.readFloats(key), b.readFloats(key), 1e-6, 1e-4);
            }
        }
    }
}
