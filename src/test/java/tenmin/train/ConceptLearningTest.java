package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.Reporter;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.NpzFile;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.vae.Vae;
import tenmin.testing.TrainRuns;
import tenmin.train.noise.DdpmSchedule;

/**
 * Proof of learning on a toy task: two LoRAs are trained the same way from the fixtures' tiny random model,
 * one on concept A ("ohwx, red disc"), one on concept B ("a green square on black"), and evaluated on
 * held-out samples of both (new samples of the concept, fresh noise, timesteps across the schedule).
 *
 * <p>The concepts live in latent space: a random VAE's latents are mostly its posterior noise, so the
 * datasets' latent caches are replaced by concept latents made here — a smooth pattern per concept, at the
 * unit variance SDXL latents have after the 0.13025 scale, with per-sample amplitude and noise — which the
 * trainer reuses because they are valid kohya caches. The base model produces neither pattern. A LoRA first
 * learns generic denoising (it lowers the loss everywhere); that it learned <em>its</em> concept shows in the
 * cross-check: on held-out A the A LoRA beats the B LoRA by a stated margin, and the other way round. The loss
 * is computed from its definition, {@code mean((unet(√ᾱ x0 + √(1−ᾱ) ε, t, text) − ε)²)}, with the base model
 * alone and with each saved LoRA loaded onto it. Measured (CPU backend, deterministic): each LoRA lowers its
 * own concept's held-out loss by about 30 % and beats the other LoRA there by about 20 %; the bounds asserted
 * are 20 % and 10 %.
 */
class ConceptLearningTest {
    private static final String A = "ohwx, red disc";
    private static final String B = "a green square on black";
    /** Evaluation timesteps: the low half of the schedule, where predicting ε needs to know x0. */
    private static final int[] EVAL_T = {10, 50, 100, 200, 300};

    @TempDir
    Path tmp;

    @Test
    void eachLoraLowersHeldOutLossOnItsOwnConceptMost() throws IOException {
        Path a = conceptData(tmp.resolve("a"), "5_ohwx disc", A, 0);
        Path b = conceptData(tmp.resolve("b"), "5_square", B, 1);
        Path loraA = train(a, tmp.resolve("lora-a"));
        Path loraB = train(b, tmp.resolve("lora-b"));
        List<float[]> heldOutA = samples(0, 100, 3);
        List<float[]> heldOutB = samples(1, 100, 3);

        try (CpuBackend backend = new CpuBackend(2); Scope root = Scope.root(backend, "eval");
             SdxlModels models = SdxlModels.load(TrainRuns.checkpoint(), SdxlConfig.tiny(), root, SdxlDtypes.fp32())) {
            double[] base = {loss(models, root, heldOutA, A), loss(models, root, heldOutB, B)};
            double[] withA = withLora(models, root, loraA, heldOutA, heldOutB);
            double[] withB = withLora(models, root, loraB, heldOutA, heldOutB);
            String report = String.format(Locale.ROOT, "held-out loss on A / B: base %.4f / %.4f, A LoRA %.4f / %.4f,"
                    + " B LoRA %.4f / %.4f", base[0], base[1], withA[0], withA[1], withB[0], withB[1]);
            assertTrue(withA[0] <= 0.8 * base[0], "the A LoRA lowers the held-out A loss by 20 %: " + report);
            assertTrue(withB[1] <= 0.8 * base[1], "the B LoRA lowers the held-out B loss by 20 %: " + report);
            assertTrue(withA[0] <= 0.9 * withB[0], "on A the A LoRA beats the B LoRA by 10 %: " + report);
            assertTrue(withB[1] <= 0.9 * withA[1], "on B the B LoRA beats the A LoRA by 10 %: " + report);
        }
    }

    /** Four 64x64 images with their captions, and their latent caches replaced by concept latents. */
    private static Path conceptData(Path root, String folder, String caption, int concept) throws IOException {
        Path dir = TrainRuns.discs(root, folder, 4, Color.RED, caption);
        List<float[]> lat = samples(concept, 0, 4);
        for (int i = 0; i < 4; i++) {
            Map<String, NpzFile.Array> npz = new LinkedHashMap<>();
            npz.put("latents", NpzFile.Array.ofFloats(lat.get(i), 4, 8, 8));
            npz.put("original_size", NpzFile.Array.ofLongs(new long[] {64, 64}, 2));
            npz.put("crop_ltrb", NpzFile.Array.ofDoubles(new double[] {0, 0, 64, 64}, 4));
            npz.put("latents_flipped", NpzFile.Array.ofFloats(mirror(lat.get(i)), 4, 8, 8));
            NpzFile.write(dir.resolve("img" + i + ".npz"), npz);
        }
        return root;
    }

    /**
     * Latents (4, 8, 8) of {@code count} samples of a concept, unscaled (as a VAE gives them): a concept pattern
     * of unit variance after the 0.13025 scale, times an amplitude in [0.8, 1.2], plus 0.1 noise.
     */
    private static List<float[]> samples(int concept, long seed, int count) {
        Rng rng = new Rng(31 * seed + concept);
        List<float[]> out = new ArrayList<>();
        for (int s = 0; s < count; s++) {
            double amp = rng.uniform(0.8, 1.2);
            float[] lat = new float[4 * 8 * 8];
            for (int c = 0; c < 4; c++) {
                for (int y = 0; y < 8; y++) {
                    for (int x = 0; x < 8; x++) {
                        double p = concept == 0
                                ? Math.sin(0.8 * x + 1.3 * c) * Math.cos(0.6 * y)                  // A: waves
                                : ((x / 2 + y / 2 + c) % 2 == 0 ? 1 : -1) * 0.9;                   // B: checkers
                        double v = amp * 1.4 * p + 0.1 * rng.nextGaussian();
                        lat[(c * 8 + y) * 8 + x] = (float) (v / Vae.SCALE_FACTOR);
                    }
                }
            }
            out.add(lat);
        }
        return out;
    }

    private static float[] mirror(float[] lat) {
        float[] out = new float[lat.length];
        for (int row = 0; row < 4 * 8; row++) {
            for (int x = 0; x < 8; x++) {
                out[row * 8 + x] = lat[row * 8 + 7 - x];
            }
        }
        return out;
    }

    private static Path train(Path data, Path out) {
        Trainer.Result r = TrainRuns.train(TrainRuns.config(data, out, "--max_train_steps=32", "--gradient_accumulation_steps=1", "--unet_lr=2e-3", "--cache_latents_to_disk",
                "--save_every_n_steps=100"), Reporter.SILENT);
        assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
        return r.lastLora();
    }

    /** Held-out losses {A, B} with the LoRA in {@code file} attached. */
    private static double[] withLora(SdxlModels models, Scope root, Path file, List<float[]> a, List<float[]> b) {
        List<LoConTarget> targets = TrainableNetwork.targets(models.unet().layers(), models.unet().moduleClasses(),
                models.textEncoders().te1().adaptableLayers(), models.textEncoders().te2().adaptableLayers(),
                new LoConRanks(4, 2, 8, 4), LoConPreset.TextEncoderModules.FULL, true, true);
        try (Scope weights = root.child("lora")) {
            LoConNetwork lora = LoConNetwork.load(file, targets, weights);
            try {
                return new double[] {loss(models, root, a, A), loss(models, root, b, B)};
            } finally {
                lora.detach();
            }
        }
    }

    /** Mean denoising loss over every latent × the evaluation timesteps, with fixed noise. */
    private static double loss(SdxlModels models, Scope root, List<float[]> latents, String caption) {
        DdpmSchedule ddpm = DdpmSchedule.sdxl();
        Rng rng = new Rng(2024);
        double sum = 0;
        int count = 0;
        for (float[] lat : latents) {
            for (int t : EVAL_T) {
                float[] noise = new float[lat.length];
                rng.fillGaussian(noise);
                float ac = ddpm.alphaCumprod(t);
                float[] xt = new float[lat.length];
                for (int i = 0; i < lat.length; i++) {
                    xt[i] = (float) (Math.sqrt(ac) * lat[i] * Vae.SCALE_FACTOR + Math.sqrt(1 - ac) * noise[i]);
                }
                try (Scope s = root.child("loss")) {
                    Functional f = Functional.inference(s);
                    SdxlModels.Conditioning c = models.condition(f, List.of(caption),
                            List.of(new int[] {64, 64, 0, 0, 64, 64}), PooledProjection.SAI, false);
                    Tensor x = s.fromHost(xt, Shape.of(1, 4, 8, 8), DType.F32);
                    float[] eps = models.unet().forward(f, x, s.fromHost(new long[] {t}, 1), c.context(), c.y()).toHost();
                    double se = 0;
                    for (int i = 0; i < eps.length; i++) {
                        double d = eps[i] - noise[i];
                        se += d * d;
                    }
                    sum += se / eps.length;
                    count++;
                }
            }
        }
        return sum / count;
    }
}
