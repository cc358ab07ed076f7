package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.lora.BlockWeights;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.SdxlModels;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.sdxl.SdxlConditioning;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * The text-to-image pipeline on the fixtures' tiny checkpoint (cpu backend): prompt encoding against the
 * text encoders run chunk by chunk and the emphasis formula written here, classifier-free guidance against
 * separate conditional and unconditional U-Net runs and the guidance formula, determinism, batches, and LoRA
 * multipliers (zero, per sample, text-encoder branches).
 */
class SdxlPipelineTest extends CpuBackendTests {
    private static Scope root;
    private static SdxlModels models;
    private static ModelFixture fixture;
    private static final Sampler.Settings EULER_A_3 = Sampler.Settings.of(SamplerKind.EULER_A, 3);

    @BeforeAll
    static void load() {
        fixture = ModelFixture.of(Fixtures.modelDirs().getFirst());
        root = Scope.root(backend, "test");
        models = SdxlModels.load(fixture.file("checkpoint.safetensors"),
                SdxlConfig.fromConfigFile(fixture.file("config.json")), root, SdxlDtypes.fp32());
    }

    @AfterAll
    static void close() {
        models.close();
        root.close();
        assertEquals(0, backend.liveTensors(), "tensors left alive");
    }

    private static SdxlPipeline pipeline(LoraSet loras) {
        return new SdxlPipeline(models, loras, PromptEncoder.Options.A1111, Reporter.SILENT);
    }

    private static SdxlPipeline.Settings settings(String prompt, String negative, double cfg) {
        return new SdxlPipeline.Settings(prompt, negative, 32, 32, EULER_A_3, cfg);
    }

    private static float[] latent(SdxlPipeline p, SdxlPipeline.Settings s, long seed, double[] multipliers) {
        return p.render(root, s, List.of(new SdxlPipeline.Job(seed, multipliers))).getFirst().latent();
    }

    private static LoraSet fixtureLoras() {
        List<LoraSpec> specs = List.of(new LoraSpec(fixture.file("locon.safetensors"), 0.8, null),
                new LoraSpec(fixture.file("te-locon.safetensors"), 1.5, null));
        List<LoraSet.Prepared> prepared = LoraSet.prepare(specs, models.config(), BlockWeights.Options.defaults(),
                Reporter.SILENT);
        return LoraSet.attach(prepared, models, root);
    }

    // ---- prompt encoding ----------------------------------------------------------------------------

    /** The context and pooled vector of one 77-token caption, from the model bundle's conditioning step. */
    private static float[][] reference(String caption) {
        try (Scope s = root.child("reference")) {
            Functional f = Functional.inference(s);
            SdxlModels.Conditioning c = models.condition(f, List.of(caption), List.of(new int[] {32, 32, 0, 0, 32, 32}),
                    PooledProjection.SAI, false);
            return new float[][] {c.context().toHost(), c.pooled().toHost()};
        }
    }

    @Test
    void shortPromptsEncodeLikeTheTextEncoders() {
        PromptEncoder.Pair pair = new PromptEncoder(models, PromptEncoder.Options.A1111).encode(root, "a photo of a cat", "");
        float[][] cond = reference("a photo of a cat");
        float[][] uncond = reference("");
        assertEquals(77, pair.cond().tokens());
        Numerics.assertRelClose("context", null, cond[0], pair.cond().context(), 1e-6);
        Numerics.assertRelClose("pooled", null, cond[1], pair.cond().pooled(), 1e-6);
        Numerics.assertRelClose("uncond context", null, uncond[0], pair.uncond().context(), 1e-6);
    }

    @Test
    void longPromptsAreChunksOf75TokensAndTheNegativeKeepsItsLength() {
        String cats = "cat ".repeat(100).strip();   // 100 tokens: a chunk of 75 and one of 25
        PromptEncoder.Pair pair = new PromptEncoder(models, PromptEncoder.Options.A1111).encode(root, cats, "");
        int c = models.config().unet().contextDim();
        assertEquals(154, pair.cond().tokens());
        assertEquals(77, pair.uncond().tokens(), "A1111 default: no padding of the negative prompt");
        float[][] first = reference("cat ".repeat(75).strip());
        float[][] second = reference("cat ".repeat(25).strip());
        float[][] empty = reference("");
        float[] ctx = pair.cond().context();
        Numerics.assertRelClose("chunk 1", null, first[0], Arrays.copyOfRange(ctx, 0, 77 * c), 1e-6);
        Numerics.assertRelClose("chunk 2", null, second[0], Arrays.copyOfRange(ctx, 77 * c, 154 * c), 1e-6);
        Numerics.assertRelClose("pooled from chunk 1", null, first[1], pair.cond().pooled(), 1e-6);
        Numerics.assertRelClose("negative", null, empty[0], pair.uncond().context(), 1e-6);
    }

    @Test
    void padCondUncondPadsTheShorterWithEmptyChunks() {
        String cats = "cat ".repeat(100).strip();
        PromptEncoder.Options padded = PromptEncoder.Options.A1111.withPadCondUncond(true);
        PromptEncoder.Pair pair = new PromptEncoder(models, padded).encode(root, "a cat", cats);
        int c = models.config().unet().contextDim();
        assertEquals(154, pair.cond().tokens());
        assertEquals(154, pair.uncond().tokens());
        float[][] cat = reference("a cat");
        float[][] empty = reference("");
        float[] ctx = pair.cond().context();
        Numerics.assertRelClose("prompt chunk", null, cat[0], Arrays.copyOfRange(ctx, 0, 77 * c), 1e-6);
        Numerics.assertRelClose("padding chunk", null, empty[0], Arrays.copyOfRange(ctx, 77 * c, 154 * c), 1e-6);
        assertTrue(PromptEncoder.Options.kohya(PooledProjection.SAI).padCondUncond(), "kohya's pipeline pads");
    }

    @Test
    void weightsScaleTokensAndKeepEachEncodersMean() {
        // "(photo:1.5)" has the tokens of "a photo of a cat"; token 2 (after BOS and "a") weighs 1.5
        PromptEncoder.Pair pair = new PromptEncoder(models, PromptEncoder.Options.A1111).encode(root,
                "a (photo:1.5) of a cat", "");
        float[] plain = reference("a photo of a cat")[0];
        int c1 = models.config().te1().width();
        int c2 = models.config().te2().width();
        int c = c1 + c2;
        float[] expected = new float[plain.length];
        for (int enc = 0; enc < 2; enc++) {
            int from = enc == 0 ? 0 : c1;
            int width = enc == 0 ? c1 : c2;
            double before = 0;
            double after = 0;
            for (int t = 0; t < 77; t++) {
                for (int d = 0; d < width; d++) {
                    double v = plain[t * c + from + d];
                    before += v;
                    after += v * (t == 2 ? 1.5 : 1.0);
                }
            }
            for (int t = 0; t < 77; t++) {
                for (int d = 0; d < width; d++) {
                    double v = plain[t * c + from + d] * (t == 2 ? 1.5 : 1.0);
                    expected[t * c + from + d] = (float) (v * before / after);
                }
            }
        }
        Numerics.assertRelClose("weighted context", new long[] {77, c}, expected, pair.cond().context(), 1e-5);
        Numerics.assertRelClose("pooled is unweighted", null, reference("a photo of a cat")[1], pair.cond().pooled(), 1e-6);
    }

    @Test
    void kohyaWeightsTheWholeContextAndKeepsThreeChunks() {
        PromptEncoder kohya = new PromptEncoder(models, PromptEncoder.Options.kohya(PooledProjection.SAI));
        float[] plain = reference("a photo of a cat")[0];
        float[] got = kohya.encode(root, "a (photo:1.5) of a cat", "").cond().context();
        int c = models.config().unet().contextDim();
        double before = 0;
        double after = 0;
        for (int i = 0; i < plain.length; i++) {
            double v = plain[i] * (i / c == 2 ? 1.5 : 1.0);
            before += plain[i];
            after += v;
        }
        float[] expected = new float[plain.length];
        for (int i = 0; i < plain.length; i++) {
            expected[i] = (float) (plain[i] * (i / c == 2 ? 1.5 : 1.0) * before / after);
        }
        Numerics.assertRelClose("kohya weighted context", new long[] {77, c}, expected, got, 1e-5);
        assertEquals(3 * 77, kohya.encode(root, "cat ".repeat(300).strip(), "").cond().tokens(), "at most 3 chunks");
    }

    // ---- guidance ------------------------------------------------------------------------------------

    /** The U-Net's ε for one image (batch of 1) with one prompt's conditioning. */
    private static float[] unetEps(PromptEncoder.Embedding e, float[] x, double t) {
        try (Scope s = root.child("single")) {
            Functional f = Functional.inference(s);
            int tokens = e.tokens();
            Tensor context = s.fromHost(e.context(), 1, tokens, e.context().length / tokens);
            Tensor y = SdxlConditioning.vector(f, s.fromHost(e.pooled(), 1, e.pooled().length),
                    SdxlConditioning.sizeTensor(s, List.of(new int[] {32, 32, 0, 0, 32, 32})));
            return models.unet().forward(f, s.fromHost(x, 1, 4, 4, 4), s.fromHost(new float[] {(float) t}, 1), context, y)
                    .toHost();
        }
    }

    @Test
    void guidanceCombinesSeparateRunsByTheFormula() {
        PromptEncoder.Pair pair = new PromptEncoder(models, PromptEncoder.Options.A1111).encode(root, "a red fox", "blurry");
        float[] x = new TorchGenerator(3).next(64);
        double t = 617.25;
        float[] c = unetEps(pair.cond(), x, t);
        float[] u = unetEps(pair.uncond(), x, t);
        List<int[]> sizes = List.of(new int[] {32, 32, 0, 0, 32, 32}, new int[] {32, 32, 0, 0, 32, 32});
        for (double scale : new double[] {6.5, 1.0, 0.0}) {
            float[] expected = new float[c.length];
            for (int i = 0; i < c.length; i++) {
                expected[i] = (float) (u[i] + scale * ((double) c[i] - u[i]));
            }
            float[] guided;
            try (Scope s = root.child("guided")) {
                guided = new UnetDenoiser(models.unet(), s, List.of(pair), true, scale, new int[] {4, 4, 4}, sizes)
                        .predictNoise(x, t);
            }
            Numerics.assertRelClose("cfg " + scale, new long[] {1, 4, 4, 4}, expected, guided, 1e-5);
        }
        float[] unguided;
        try (Scope s = root.child("unguided")) {
            unguided = new UnetDenoiser(models.unet(), s, List.of(pair), false, 1.0, new int[] {4, 4, 4},
                    sizes.subList(0, 1)).predictNoise(x, t);
        }
        Numerics.assertRelClose("cfg 1 without the unconditional half", null, c, unguided, 1e-6);
    }

    @Test
    void promptAndNegativeOfDifferentLengthsRunAsSeparateBatches() {
        String longNegative = "blurry ".repeat(90).strip(); // two chunks against the prompt's one
        PromptEncoder.Pair pair = new PromptEncoder(models, PromptEncoder.Options.A1111).encode(root, "a red fox",
                longNegative);
        assertEquals(77, pair.cond().tokens());
        assertEquals(154, pair.uncond().tokens());
        assertTrue(UnetDenoiser.splits(List.of(pair), true));
        float[] x = new TorchGenerator(5).next(64);
        double t = 411.5;
        float[] c = unetEps(pair.cond(), x, t);
        float[] u = unetEps(pair.uncond(), x, t);
        List<int[]> sizes = List.of(new int[] {32, 32, 0, 0, 32, 32}, new int[] {32, 32, 0, 0, 32, 32});
        float[] expected = new float[c.length];
        for (int i = 0; i < c.length; i++) {
            expected[i] = (float) (u[i] + 6.5 * ((double) c[i] - u[i]));
        }
        float[] guided;
        try (Scope s = root.child("guided")) {
            guided = new UnetDenoiser(models.unet(), s, List.of(pair), true, 6.5, new int[] {4, 4, 4}, sizes)
                    .predictNoise(x, t);
        }
        Numerics.assertRelClose("cfg 6.5, separate batches", new long[] {1, 4, 4, 4}, expected, guided, 1e-5);
    }

    @Test
    void cfgOneIgnoresEvenALongNegativePrompt() {
        SdxlPipeline p = pipeline(null);
        float[] none = latent(p, settings("a red fox", "", 1.0), 11, null);
        float[] longNegative = latent(p, settings("a red fox", "grainy ".repeat(90).strip(), 1.0), 11, null);
        assertArrayEquals(none, longNegative);
    }

    @Test
    void cfgOneIgnoresTheNegativePrompt() {
        SdxlPipeline p = pipeline(null);
        float[] a = latent(p, settings("a red fox", "blurry", 1.0), 11, null);
        float[] b = latent(p, settings("a red fox", "grainy, dark", 1.0), 11, null);
        assertArrayEquals(a, b);
        float[] guided = latent(p, settings("a red fox", "grainy, dark", 4.0), 11, null);
        assertFalse(Arrays.equals(a, guided), "cfg 4 uses the negative prompt");
    }

    // ---- determinism and batches -------------------------------------------------------------------

    @Test
    void sameSeedSameImageAndBatchImagesMatchSingleRenders() {
        SdxlPipeline p = pipeline(null);
        SdxlPipeline.Settings s = settings("a castle, (sunset:1.2)", "low quality", 5.0);
        List<SdxlPipeline.Image> batch = p.render(root, s, List.of(new SdxlPipeline.Job(20, null),
                new SdxlPipeline.Job(21, null)));
        SdxlPipeline.Image again = p.render(root, s, List.of(new SdxlPipeline.Job(20, null))).getFirst();
        SdxlPipeline.Image single = p.render(root, s, List.of(new SdxlPipeline.Job(21, null))).getFirst();
        SdxlPipeline.Image repeat = p.render(root, s, List.of(new SdxlPipeline.Job(21, null))).getFirst();
        assertArrayEquals(single.latent(), repeat.latent(), "same seed, same latents");
        assertEquals(single.image(), repeat.image(), "same seed, same image");
        Numerics.assertRelClose("seed 20 in a batch", null, again.latent(), batch.get(0).latent(), 1e-5);
        Numerics.assertRelClose("seed 21 in a batch", null, single.latent(), batch.get(1).latent(), 1e-5);
        assertNotEquals(batch.get(0).image(), batch.get(1).image());
        assertEquals(32, single.image().width());
        assertEquals(32, single.image().height());
    }

    // ---- LoRA multipliers ----------------------------------------------------------------------------

    @Test
    void loraMultipliersZeroPerSampleAndTextEncoderBranches() {
        try (LoraSet loras = fixtureLoras()) {
            SdxlPipeline p = pipeline(loras);
            SdxlPipeline.Settings s = settings("a red fox", "blurry", 4.0);
            int n = loras.modules().size();
            double[] zero = new double[n];
            double[] full = loras.defaultMultipliers();
            double[] unetOnly = full.clone();
            double[] teOnly = full.clone();
            for (int i = 0; i < n; i++) {
                (loras.modules().get(i).isTextEncoder() ? unetOnly : teOnly)[i] = 0;
            }
            assertEquals(0.8, full[0], 0.0, "U-Net modules (first file) at strength 0.8");
            assertEquals(1.5, full[n - 1], 0.0, "text-encoder modules (second file) at strength 1.5");

            float[] off = latent(p, s, 5, zero);
            float[] withFull = latent(p, s, 5, null);
            float[] withUnet = latent(p, s, 5, unetOnly);
            float[] withTe = latent(p, s, 5, teOnly);
            float[] withFullAgain = latent(p, s, 5, full);
            assertArrayEquals(withFull, withFullAgain, "cached conditioning is keyed by the text-encoder multipliers");
            assertFalse(Arrays.equals(off, withUnet));
            assertFalse(Arrays.equals(off, withTe), "text-encoder branches change the conditioning");
            assertFalse(Arrays.equals(withFull, withUnet));

            // four configurations in one U-Net batch: each as rendered alone
            List<SdxlPipeline.Image> batch = p.render(root, s, List.of(new SdxlPipeline.Job(5, zero),
                    new SdxlPipeline.Job(5, full), new SdxlPipeline.Job(5, unetOnly), new SdxlPipeline.Job(5, teOnly)));
            Numerics.assertRelClose("batched: off", null, off, batch.get(0).latent(), 1e-5);
            Numerics.assertRelClose("batched: full", null, withFull, batch.get(1).latent(), 1e-5);
            Numerics.assertRelClose("batched: U-Net only", null, withUnet, batch.get(2).latent(), 1e-5);
            Numerics.assertRelClose("batched: text encoders only", null, withTe, batch.get(3).latent(), 1e-5);

            // multipliers 0 render exactly what the model renders without any LoRA
            loras.detach();
            float[] none = latent(pipeline(null), s, 5, null);
            assertArrayEquals(none, off, "strength 0 equals no LoRA");
        }
    }

    @Test
    void sizesMustFitTheModel() {
        SdxlConfig tiny = models.config();
        SdxlPipeline.checkSize(tiny, 64, 96, "--");
        for (int[] wh : new int[][] {{60, 64}, {64, 0}, {72, 64}, {64, 40}}) {
            InputException e = assertThrows(InputException.class,
                    () -> SdxlPipeline.checkSize(tiny, wh[0], wh[1], "--"));
            assertFalse(e.getMessage().contains("\n"));
        }
    }

    // ---- profiler region -----------------------------------------------------------------------------

    /**
     * {@link SdxlPipeline#profileNextSampling}: the next render's sampling loop is the CUDA profiler's region
     * (opened once, closed once, the U-Net's convolutions inside, the VAE decoder's after it); the render after
     * it opens none.
     */
    @Test
    void profiledRenderMarksItsSamplingLoopAndNothingElse() throws Exception {
        List<String> calls = new java.util.ArrayList<>();
        tenmin.engine.api.Backend recording = tenmin.testing.RecordingBackend.wrap(backend, calls);
        SdxlPipeline p = pipeline(LoraSet.empty());
        try (Scope s = Scope.root(recording, "profiled")) {
            p.profileNextSampling();
            p.render(s, settings("a red cube", "", 2.0), List.of(new SdxlPipeline.Job(5, null)));
            int open = calls.indexOf("region true");
            int close = calls.indexOf("region false");
            assertEquals(2, calls.stream().filter(c -> c.startsWith("region")).count(), calls::toString);
            assertTrue(open >= 0 && close > open, calls::toString);
            assertEquals(1, calls.stream().filter(c -> c.equals("region false")).count());
            long unetConvs = tenmin.testing.RecordingBackend.count(calls, open, close, "conv");
            long afterConvs = tenmin.testing.RecordingBackend.count(calls, close, calls.size(), "conv");
            long beforeConvs = tenmin.testing.RecordingBackend.count(calls, 0, open, "conv");
            assertTrue(unetConvs > 0, "U-Net convolutions inside the region");
            assertTrue(afterConvs > 0, "the VAE decoder's convolutions after it");
            assertEquals(0, beforeConvs, "text encoding has no convolutions; nothing else ran before the region");
            calls.clear();
            p.render(s, settings("a red cube", "", 2.0), List.of(new SdxlPipeline.Job(5, null)));
            assertFalse(calls.stream().anyMatch(c -> c.startsWith("region")), "a second render is not profiled");
        }
    }
}
