package tenmin.models.clip;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.lora.LoConModule;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.clip.ClipTextEncoder.PooledProjection;
import tenmin.models.nn.AdaptableLayer;
import tenmin.testing.CpuBackendTests;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * Both SDXL text encoders against te-io/te-locon of every model folder (sgm FrozenOpenCLIPEmbedder2 /
 * open_clip outputs, fixtures README §3): forward outputs with and without the TE LoCon (te-locon loaded by
 * {@code tenmin.lora.LoConNetwork} onto preset full's targets of our layers), the LoRA gradients of
 * {@code Σ(lora.context·R) + Σ(lora.te2_pooled·R2)}, and the tokenizer on the fixture prompts.
 * Each folder is computed once (lazily) and every tensor is its own dynamic test named after the folder.
 */
class TextEncoderFixtureTest extends CpuBackendTests {
    /** Tolerances: relative forward error (max|a-b| / max|b|) and the relative term of the gradient bound. */
    record Tolerance(double forward, double gradient) {
        /** The fixtures README's bounds for an fp32 implementation. */
        static final Tolerance FIXTURES = new Tolerance(1e-5, 5e-5);
    }

    @TestFactory
    Stream<DynamicNode> everyModelFolder() {
        List<DynamicNode> folders = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            folders.add(folder(dir, backend, "text encoders", Tolerance.FIXTURES));
        }
        return folders.stream();
    }

    /** Every check of one model folder, run on {@code backend}, as a container named {@code label [folder]}. */
    static DynamicContainer folder(Path dir, Backend backend, String label, Tolerance tol) {
        String tag = " [" + dir.getFileName() + "]";
        Case c = new Case(dir, backend, tol);
        List<DynamicTest> tests = new ArrayList<>();
        tests.add(DynamicTest.dynamicTest("tokenizer ids of te_prompts" + tag, c::checkTokenizer));
        for (String out : List.of("te1_penultimate", "te2_penultimate", "te2_last_hidden_state", "te2_pooled",
                "te2_pooled_kohya", "context")) {
            String pretty = out.replace('_', ' ');
            tests.add(DynamicTest.dynamicTest(pretty + tag, () -> c.checkForward(out)));
            tests.add(DynamicTest.dynamicTest("lora " + pretty + tag, () -> c.checkForward("lora." + out)));
        }
        tests.add(DynamicTest.dynamicTest("lora loss" + tag, c::checkLoss));
        for (String key : c.gradKeys()) {
            tests.add(DynamicTest.dynamicTest(key + tag, () -> c.checkGrad(key)));
        }
        tests.add(DynamicTest.dynamicTest("te1 last layer gets exactly zero gradient (Q4)" + tag, c::checkUnusedLayer));
        tests.add(DynamicTest.dynamicTest("gradient checkpointing gives identical gradients" + tag, c::checkCheckpointing));
        tests.add(DynamicTest.dynamicTest("bf16 weights give the context within bf16 precision" + tag, c::checkBf16));
        return DynamicContainer.dynamicContainer(label + tag, tests);
    }

    /** One model folder: fixture files, and our results computed on first use. */
    private static final class Case {
        private final Path dir;
        private final Backend backend;
        private final Tolerance tol;
        private Map<String, float[]> ours;       // output name (as in te-io) → values
        private Map<String, float[]> oursCkpt;   // gradients with checkpointing on
        private float[] bf16Context;
        private List<String> unusedModules;

        Case(Path dir, Backend backend, Tolerance tol) {
            this.dir = dir;
            this.backend = backend;
            this.tol = tol;
        }

        private Path file(String name) {
            return dir.resolve(name);
        }

        List<String> gradKeys() {
            List<String> keys = new ArrayList<>();
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                for (String k : new TreeSet<>(io.names())) {
                    if (k.startsWith("grad.")) {
                        keys.add(k);
                    }
                }
            }
            return keys;
        }

        private JsonNode config() throws IOException {
            return new ObjectMapper().readTree(file("config.json").toFile());
        }

        private ClipTextConfig te1Config() {
            return ClipTextConfig.fromConfigFile(file("config.json"), "te1");
        }

        private ClipTextConfig te2Config() {
            return ClipTextConfig.fromConfigFile(file("config.json"), "te2");
        }

        // ---- checks -----------------------------------------------------------------------------

        void checkTokenizer() throws IOException {
            JsonNode prompts = config().get("te_prompts");
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                long[] te1 = io.readLongs("ids_te1");
                long[] te2 = io.readLongs("ids_te2");
                long[] count = io.readLongs("n_bpe_tokens");
                assertEquals(prompts.size() * 77L, te1.length, "prompt count");
                ClipTokenizer tok = ClipTokenizer.shared();
                for (int i = 0; i < prompts.size(); i++) {
                    String text = prompts.get(i).asText();
                    ClipTokenizer.Tokens t1 = tok.tokenize(text, ClipTokenizer.PAD_TE1);
                    ClipTokenizer.Tokens t2 = tok.tokenize(text, ClipTokenizer.PAD_TE2);
                    assertArrayEquals(row(te1, i), longs(t1.ids()), "te1 ids of prompt " + i);
                    assertArrayEquals(row(te2, i), longs(t2.ids()), "te2 ids of prompt " + i);
                    assertEquals(count[i], t1.nBpeTokens(), "n_bpe_tokens of prompt " + i);
                }
            }
        }

        void checkForward(String name) {
            compare(name, tol.forward());
        }

        void checkLoss() {
            compare("lora.loss", tol.forward());
        }

        void checkGrad(String key) {
            Map<String, float[]> r = results();
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                double g = 0;
                for (String k : io.names()) {
                    if (k.startsWith("grad.")) {
                        for (float v : io.readFloats(k)) {
                            g = Math.max(g, Math.abs(v));
                        }
                    }
                }
                // Fixtures README §2: max|a-b| <= 5e-5 max|b| + 1e-5 G per tensor (relative term from tol).
                Numerics.assertClose(key, io.info(key).shape(), io.readFloats(key), r.get(key), 1e-5 * g, tol.gradient());
            }
        }

        void checkUnusedLayer() {
            Map<String, float[]> r = results();
            assertFalse(unusedModules.isEmpty(), "no layer reported without gradient");
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                for (String module : unusedModules) {
                    for (String part : List.of(".lora_down.weight", ".lora_up.weight")) {
                        String key = "grad." + module + part;
                        for (float v : io.readFloats(key)) {
                            assertEquals(0f, v, "fixture " + key + " is not zero");
                        }
                        for (float v : r.get(key)) {
                            assertEquals(0f, v, key + " is not exactly zero");
                        }
                    }
                }
            }
        }

        void checkCheckpointing() {
            Map<String, float[]> r = results();
            for (Map.Entry<String, float[]> e : oursCkpt.entrySet()) {
                assertArrayEquals(r.get(e.getKey()), e.getValue(), e.getKey() + " differs with checkpointing");
            }
            assertEquals(gradKeys().size() + 1, oursCkpt.size(), "checkpointed gradients and loss");
        }

        void checkBf16() {
            results();
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                // bf16 keeps 8 significant bits (relative step 2^-8 = 3.9e-3); a few layers of rounding stay below 3e-2.
                Numerics.assertRelClose("bf16 context", io.info("context").shape(), io.readFloats("context"),
                        bf16Context, 3e-2);
            }
        }

        private void compare(String name, double rel) {
            Map<String, float[]> r = results();
            try (SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"))) {
                // A configuration whose text_projection is not square has no kohya orientation (sd-scripts
                // cannot load it); its te-io may leave that output out.
                Assumptions.assumeTrue(io.contains(name), () -> name + " is not in " + file("te-io.safetensors"));
                Numerics.assertRelClose(name, io.info(name).shape(), io.readFloats(name), r.get(name), rel);
            }
        }

        // ---- computing --------------------------------------------------------------------------

        private synchronized Map<String, float[]> results() {
            if (ours == null) {
                try {
                    compute();
                } catch (IOException e) {
                    throw new AssertionError("cannot read fixtures in " + dir, e);
                }
            }
            return ours;
        }

        private void compute() throws IOException {
            Map<String, float[]> out = new LinkedHashMap<>();
            try (SafetensorsFile ckpt = SafetensorsFile.open(file("checkpoint.safetensors"));
                 SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"));
                 SafetensorsFile locon = SafetensorsFile.open(file("te-locon.safetensors"));
                 Scope model = Scope.root(backend, "model")) {
                SdxlTextEncoders enc = SdxlTextEncoders.load(ckpt, model, DType.F32, te1Config(), te2Config());
                Tensor ids1 = ModelFixture.tensor(io, "ids_te1", model);
                Tensor ids2 = ModelFixture.tensor(io, "ids_te2", model);

                try (Scope step = model.child("plain")) {
                    outputs(Functional.inference(step), enc, ids1, ids2, "", out);
                }

                LoConNetwork net = attach(enc, locon, model);
                List<LoConModule> modules = net.modules();
                try (Scope step = model.child("plain lora")) {
                    outputs(Functional.inference(step), enc, ids1, ids2, "lora.", out);
                }
                out.putAll(trainStep(enc, modules, io, ids1, ids2, model, false));
                oursCkpt = trainStep(enc, modules, io, ids1, ids2, model, true);

                unusedModules = new ArrayList<>();
                for (AdaptableLayer l : enc.layersWithoutGradient()) {
                    unusedModules.add("lora_te1_" + l.path().replace('.', '_'));
                }
                net.detach();
            }
            try (SafetensorsFile ckpt = SafetensorsFile.open(file("checkpoint.safetensors"));
                 SafetensorsFile io = SafetensorsFile.open(file("te-io.safetensors"));
                 Scope model = Scope.root(backend, "bf16")) {
                SdxlTextEncoders enc = SdxlTextEncoders.load(ckpt, model, DType.BF16, te1Config(), te2Config());
                SdxlTextEncoders.Conditioning c = enc.encode(Functional.inference(model), ModelFixture.tensor(io, "ids_te1", model),
                        ModelFixture.tensor(io, "ids_te2", model), SdxlTextEncoders.Options.DEFAULT);
                assertEquals(DType.BF16, c.context().dtype(), "compute dtype follows the weights");
                bf16Context = c.context().toHost();
            }
            assertEquals(0, backend.liveTensors(), "tensors left alive");
            ours = out;
        }

        /** Penultimate/last/pooled of both encoders and the context, under {@code prefix}. */
        private static void outputs(Functional f, SdxlTextEncoders enc, Tensor ids1, Tensor ids2, String prefix,
                                    Map<String, float[]> out) {
            ClipTextEncoder.Hidden h1 = enc.te1().forward(f, ids1, false, false);
            ClipTextEncoder.Hidden h2 = enc.te2().forward(f, ids2, true, false);
            out.put(prefix + "te1_penultimate", h1.penultimate().toHost());
            out.put(prefix + "te2_penultimate", h2.penultimate().toHost());
            out.put(prefix + "te2_last_hidden_state", h2.last().toHost());
            out.put(prefix + "te2_pooled", enc.te2().pooled(f, h2.last(), ids2, PooledProjection.SAI).toHost());
            ClipTextConfig c2 = enc.te2().config();
            if (c2.projectionDim() == c2.width()) {
                out.put(prefix + "te2_pooled_kohya", enc.te2().pooled(f, h2.last(), ids2, PooledProjection.KOHYA).toHost());
            }
            SdxlTextEncoders.Conditioning c = enc.encode(f, ids1, ids2, SdxlTextEncoders.Options.DEFAULT);
            out.put(prefix + "context", c.context().toHost());
            assertArrayEquals(out.get(prefix + "te2_pooled"), c.pooled().toHost(), "encode's pooled vector");
        }

        /**
         * te-locon loaded strictly (every module, nothing else) onto LyCORIS preset {@code full}'s text-encoder
         * targets of our layers (attention q/k/v/out and MLP fc1/fc2, named from their HF paths).
         */
        private LoConNetwork attach(SdxlTextEncoders enc, SafetensorsFile locon, Scope model) throws IOException {
            JsonNode teLora = config().get("te_lora");
            LoConRanks ranks = LoConRanks.linear(teLora.get("linear_rank").intValue(), teLora.get("linear_alpha").doubleValue());
            List<LoConTarget> targets = new ArrayList<>(LoConPreset.textEncoder(LoConPreset.TE1, enc.te1().adaptableLayers(),
                    LoConPreset.TextEncoderModules.FULL, ranks));
            targets.addAll(LoConPreset.textEncoder(LoConPreset.TE2, enc.te2().adaptableLayers(),
                    LoConPreset.TextEncoderModules.FULL, ranks));
            return LoConNetwork.load(locon, targets, model);
        }

        /** loss = Σ(context·R) + Σ(pooled·R2), backward; returns the loss and every LoRA gradient. */
        private static Map<String, float[]> trainStep(SdxlTextEncoders enc, List<LoConModule> modules,
                                                      SafetensorsFile io, Tensor ids1, Tensor ids2, Scope model,
                                                      boolean checkpointing) {
            Map<String, float[]> out = new LinkedHashMap<>();
            for (LoConModule m : modules) {
                m.down().zeroGrad();
                m.up().zeroGrad();
            }
            try (Scope step = model.child("train")) {
                Functional f = Functional.training(step);
                SdxlTextEncoders.Options options = new SdxlTextEncoders.Options(PooledProjection.SAI, checkpointing);
                SdxlTextEncoders.Conditioning c = enc.encode(f, ids1, ids2, options);
                Tensor r = ModelFixture.tensor(io, "R", step);
                Tensor r2 = ModelFixture.tensor(io, "R2", step);
                Functional plain = f.noGrad();
                Tensor loss = plain.add(plain.sum(plain.mul(c.context(), r)), plain.sum(plain.mul(c.pooled(), r2)));
                out.put("lora.loss", loss.toHost());
                f.backward(List.of(c.context(), c.pooled()), List.of(r, r2));
            }
            for (LoConModule m : modules) {
                out.put("grad." + m.name() + ".lora_down.weight", m.down().grad().toHost());
                out.put("grad." + m.name() + ".lora_up.weight", m.up().grad().toHost());
            }
            return out;
        }

        private static long[] row(long[] ids, int i) {
            long[] r = new long[77];
            System.arraycopy(ids, i * 77, r, 0, 77);
            return r;
        }

        private static long[] longs(int[] ids) {
            long[] r = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                r[i] = ids[i];
            }
            return r;
        }
    }
}
