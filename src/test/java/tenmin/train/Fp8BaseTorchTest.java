package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.awt.Color;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.cli.TrainTestConfigs;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.models.SdxlDtypes;
import tenmin.testing.Numerics;
import tenmin.testing.TorchBackendTests;
import tenmin.testing.TrainRuns;

/**
 * {@code --fp8_base} on the torch backend (CPU libtorch: float8_e4m3fn tensors, cast by libtorch at each use). In fp32
 * compute, as the CPU device runs, a short run has the cpu backend's losses (1e-4 relative) and ends with its LoRA
 * within float tolerance. In bf16 compute, as a GPU runs ({@link TrainSetup#dtypesForTests}), on either backend the
 * run equals, loss for loss, the run on a checkpoint rounded beforehand as the reference rounds: the U-Net straight to
 * fp8, the text encoders to bf16 first and then to fp8; and differs from rounding the text encoders straight to fp8.
 */
@Tag("torch")
class Fp8BaseTorchTest extends TorchBackendTests {
    @TempDir
    Path tmp;

    private Trainer.Result train(Backend backend, Path data, String name, Path checkpoint, String... extra) {
        List<String> args = new ArrayList<>(TrainRuns.args(data, tmp.resolve(name), "--max_train_steps=1",
                "--save_every_n_steps=100", "--optimizer_type=SGD", "--learning_rate=0.05", "--unet_lr=0.05",
                "--text_encoder_lr=0.05", "--save_precision=float", "--mixed_precision=bf16"));
        if (checkpoint != null) {
            args.add("--pretrained_model_name_or_path=" + checkpoint);
        }
        args.addAll(List.of(extra));
        Trainer.Result r = TrainRuns.train(new Trainer[1], TrainTestConfigs.parse(args), Reporter.SILENT, backend);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        return r;
    }

    @Test
    void inFp32TheTorchBackendHasTheCpuBackendsLosses() {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Trainer.Result cpu;
        try (CpuBackend backend = new CpuBackend(2)) {
            cpu = train(backend, data, "cpu", null, "--fp8_base", "--gradient_checkpointing");
        }
        Trainer.Result onTorch = train(torch, data, "torch", null, "--fp8_base", "--gradient_checkpointing");
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

    @Test
    void inBf16EitherBackendEqualsTheCheckpointRoundedAsTheReferenceRounds() throws Exception {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "2_disc", 4, Color.RED, "ohwx, red disc");
        Path viaBf16 = Fp8BaseTest.preRounded(tmp.resolve("via-bf16.safetensors"), true, DType.BF16);
        Path direct = Fp8BaseTest.preRounded(tmp.resolve("direct.safetensors"), true, DType.F32);
        TrainSetup.dtypesForTests = new SdxlDtypes(DType.BF16, DType.BF16, DType.F32);
        try (CpuBackend cpu = new CpuBackend(2)) {
            for (Backend backend : new Backend[] {cpu, torch}) {
                String name = backend.name();
                Trainer.Result fp8 = train(backend, data, name + "-fp8", null, "--fp8_base");
                assertEquals(train(backend, data, name + "-via-bf16", viaBf16).losses(), fp8.losses(), name);
                assertNotEquals(train(backend, data, name + "-direct", direct).losses(), fp8.losses(),
                        name + ": text encoders rounded straight to fp8");
            }
        } finally {
            TrainSetup.dtypesForTests = null;
        }
    }
}
