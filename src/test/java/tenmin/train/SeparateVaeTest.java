package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.testing.TrainRuns;

/**
 * {@code --vae}: a single-file VAE in the LDM layout (with or without {@code first_stage_model.}) replaces the
 * checkpoint's, exactly as a checkpoint holding that VAE would; the saved LoRA records its name and hashes as the
 * reference does; a diffusers-layout file is refused.
 */
class SeparateVaeTest {
    @TempDir
    Path tmp;

    private static final String PREFIX = "first_stage_model.";
    private static final String ALTERED = "decoder.conv_out.weight";

    /** The checkpoint's VAE under {@code prefix}, {@code decoder.conv_out.weight} doubled. */
    private Path vaeFile(String name, String prefix) throws Exception {
        SafetensorsWriter out = new SafetensorsWriter();
        try (SafetensorsFile in = SafetensorsFile.open(TrainRuns.checkpoint())) {
            for (String k : in.names()) {
                if (k.startsWith(PREFIX)) {
                    float[] v = in.readFloats(k);
                    if (k.equals(PREFIX + ALTERED)) {
                        for (int i = 0; i < v.length; i++) {
                            v[i] *= 2;
                        }
                    }
                    out.addFloats(prefix + k.substring(PREFIX.length()), StDType.F32, in.info(k).shape(), v);
                }
            }
        }
        Path p = tmp.resolve(name);
        out.write(p);
        return p;
    }

    private static float[] decode(Path checkpoint, Path vae) {
        try (CpuBackend backend = new CpuBackend(2); Scope root = Scope.root(backend, "test");
             SdxlModels m = SdxlModels.load(checkpoint, vae, SdxlConfig.tiny(), root, SdxlDtypes.fp32())) {
            float[] latent = new float[4 * 8 * 8];
            for (int i = 0; i < latent.length; i++) {
                latent[i] = (float) Math.sin(i * 0.37);
            }
            try (Scope step = root.child("step")) {
                return m.vae().decode(step, step.fromHost(latent, Shape.of(1, 4, 8, 8), DType.F32)).toHost();
            }
        }
    }

    @Test
    void theFilesVaeReplacesTheCheckpointsAndIsRecorded() throws Exception {
        Path bare = vaeFile("vae-bare.safetensors", "");
        Path prefixed = vaeFile("vae-prefixed.safetensors", PREFIX);
        float[] own = decode(TrainRuns.checkpoint(), null);
        float[] fromBare = decode(TrainRuns.checkpoint(), bare);
        assertFalse(java.util.Arrays.equals(own, fromBare), "the altered decoder is used");
        assertArrayEquals(fromBare, decode(TrainRuns.checkpoint(), prefixed));
        // the same as the original decoder's output with conv_out doubled: the last conv is linear, its bias unchanged
        try (SafetensorsFile ckpt = SafetensorsFile.open(TrainRuns.checkpoint())) {
            float[] bias = ckpt.readFloats(PREFIX + "decoder.conv_out.bias");
            int plane = own.length / bias.length;
            for (int i = 0; i < own.length; i++) {
                float b = bias[i / plane];
                assertEquals(2 * (own[i] - b) + b, fromBare[i], 1e-4 * (1 + Math.abs(fromBare[i])), "value " + i);
            }
        }

        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 2, Color.RED, "ohwx");
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, tmp.resolve("out"), "--vae=" + bare,
                "--max_train_steps=1"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        try (SafetensorsFile f = SafetensorsFile.open(r.lastLora())) {
            Map<String, String> m = f.metadata();
            assertEquals("vae-bare.safetensors", m.get("ss_vae_name"));
            String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(bare)));
            assertEquals(sha, m.get("ss_new_vae_hash"));
            assertTrue(m.get("ss_vae_hash").matches("[0-9a-f]{8}"), m.get("ss_vae_hash"));
        }
    }

    @Test
    void aDiffusersVaeOrAFolderIsRefused() throws Exception {
        SafetensorsWriter out = new SafetensorsWriter();
        out.addFloats("encoder.down_blocks.0.resnets.0.conv1.weight", StDType.F32, new long[] {1}, new float[1]);
        Path diffusers = tmp.resolve("diffusion_pytorch_model.safetensors");
        out.write(diffusers);
        try (CpuBackend backend = new CpuBackend(1); Scope root = Scope.root(backend, "test")) {
            InputException e = assertThrows(InputException.class, () -> SdxlModels.load(TrainRuns.checkpoint(), diffusers,
                    SdxlConfig.tiny(), root, SdxlDtypes.fp32()));
            assertTrue(e.getMessage().startsWith(diffusers.toString()) && e.getMessage().contains("diffusers"),
                    e.getMessage());
            assertEquals(0, backend.liveTensors());
        }
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 1, Color.RED, "ohwx");
        InputException folder = assertThrows(InputException.class, () -> TrainRuns.config(data, tmp.resolve("o"),
                "--vae=" + tmp));
        assertTrue(folder.getMessage().contains("--vae") && folder.getMessage().contains("folder"), folder.getMessage());
    }
}
