package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.Cli;
import tenmin.testing.DenseDelta;

/** {@code tenmin resize} in-process: log lines, exit codes, one-line errors, no partial output. */
class ResizeCommandTest {
    @TempDir
    Path dir;
    Path ckpt;
    Path lora;
    Path out;

    private static Cli.Run run(String... args) {
        return Cli.run(args);
    }

    private static final String UNET = "model.diffusion_model.";
    private static final String TE1 = "conditioner.embedders.0.transformer.text_model.encoder.layers.";

    private static float[] random(SplittableRandom rnd, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return x;
    }

    /** Checkpoint: a UNet conv, a UNet linear, a TE1 linear never trained, and TE1 layer 11. */
    private static void writeCheckpoint(Path file) throws IOException {
        SplittableRandom rnd = new SplittableRandom(1);
        new SafetensorsWriter()
                .addFloats(UNET + "input_blocks.1.0.in_layers.2.weight", StDType.F16, new long[] {8, 8, 3, 3}, random(rnd, 576, 0.2))
                .addFloats(UNET + "input_blocks.1.0.in_layers.2.bias", StDType.F16, new long[] {8}, random(rnd, 8, 0.1))
                .addFloats(UNET + "time_embed.0.weight", StDType.F16, new long[] {16, 8}, random(rnd, 128, 0.3))
                .addFloats(TE1 + "11.mlp.fc1.weight", StDType.F16, new long[] {16, 8}, random(rnd, 128, 0.3))
                .write(file);
    }

    /** LoRA: the conv (rank 4) and TE1 layer 11 with a zero up; extra modules as given. */
    private static void writeLora(Path file, Map<String, String> meta, SafetensorsWriter extra) throws IOException {
        SplittableRandom rnd = new SplittableRandom(2);
        String conv = "lora_unet_input_blocks_1_0_in_layers_2";
        String te = "lora_te1_text_model_encoder_layers_11_mlp_fc1";
        float[] up = random(rnd, 8 * 4, 0.1);
        for (int o = 0; o < 8; o++) {
            for (int j = 0; j < 4; j++) {
                up[o * 4 + j] *= (float) Math.pow(0.1, j);
            }
        }
        SafetensorsWriter w = extra == null ? new SafetensorsWriter() : extra;
        w.metadata(meta)
                .addFloats(conv + ".lora_down.weight", StDType.F16, new long[] {4, 8, 3, 3}, random(rnd, 4 * 72, 0.1))
                .addFloats(conv + ".lora_up.weight", StDType.F16, new long[] {8, 4, 1, 1}, up)
                .addFloats(conv + ".alpha", StDType.F16, new long[0], new float[] {2})
                .addFloats(te + ".lora_down.weight", StDType.F16, new long[] {4, 8}, random(rnd, 32, 0.1))
                .addFloats(te + ".lora_up.weight", StDType.F16, new long[] {16, 4}, new float[64])
                .addFloats(te + ".alpha", StDType.F16, new long[0], new float[] {2})
                .write(file);
    }

    @BeforeEach
    void files() throws IOException {
        ckpt = dir.resolve("base.safetensors");
        lora = dir.resolve("mylora.safetensors");
        out = dir.resolve("out");
        writeCheckpoint(ckpt);
        writeLora(lora, Map.of("ss_output_name", "mylora"), null);
    }

    private String[] args(String... extra) {
        List<String> a = new ArrayList<>(List.of("resize", "--no-norms-cache", "-o", out.toString()));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void logsInTheReferenceFormat() {
        Cli.Run r = run(args("-vv", "-r", "fro_ckpt=1,thr=-3.3:spn_lora=1,thr=-1.5:fro_ckpt=0.8,params=0.2,size=0.0001",
                ckpt.toString(), lora.toString()));
        assertEquals(0, r.exit(), r.err());
        List<String> lines = r.err().lines().filter(l -> l.contains(":root:")).toList();
        assertEquals("INFO:root:Processing LoRA model: " + lora, lines.get(0));
        assertTrue(lines.contains("INFO:root:No LoRA layer for 'model.diffusion_model.time_embed.0.weight' (16, 8),"
                + " expected LoRA key: 'lora_unet_time_embed_0'"), r.err());
        assertTrue(lines.contains("DEBUG:root:Loading base weight model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
                + " for lora_unet_input_blocks_1_0_in_layers_2"), r.err());
        assertTrue(lines.contains("WARNING:root:LoRA layer lora_te1_text_model_encoder_layers_11_mlp_fc1 is all zeroes! dim=4"));
        List<String> quantiles = lines.stream().filter(l -> l.startsWith("INFO:root:Score quantiles: ")).toList();
        assertEquals(3, quantiles.size());
        for (String q : quantiles) {
            assertTrue(q.matches("INFO:root:Score quantiles: 0\\.01:-?\\d+\\.\\d{3} 0\\.10:-?\\d+\\.\\d{3} 0\\.25:-?\\d+\\.\\d{3}"
                    + " 0\\.50:-?\\d+\\.\\d{3} 0\\.75:-?\\d+\\.\\d{3} 0\\.90:-?\\d+\\.\\d{3} 0\\.99:-?\\d+\\.\\d{3}"), q);
        }
        List<String> dims = lines.stream().filter(l -> l.startsWith("DEBUG:root:dim:")).toList();
        assertEquals(3, dims.size(), "one per layer and recipe");
        assertTrue(dims.get(0).startsWith("DEBUG:root:dim:  4->2   rle_lora:"), dims.get(0));
        for (String d : dims) {
            assertTrue(d.matches("DEBUG:root:dim:  4->[0-4]   rle_lora: {0,2}\\d+\\.\\d\\d% rle_ckpt: {0,2}\\d+\\.\\d\\d%"
                    + " lora_unet_input_blocks_1_0_in_layers_2"), d);
        }
        assertTrue(lines.stream().anyMatch(l -> l.matches("INFO:root:Selected threshold: -?\\d+\\.\\d{3}")), r.err());
        // resize_lora's order per recipe: [Selected threshold], the dim lines, the quantiles, Saving
        List<String> perRecipe = lines.stream().filter(l -> l.startsWith("INFO:root:Selected") || l.startsWith("DEBUG:root:dim:")
                || l.startsWith("INFO:root:Score quantiles") || l.startsWith("INFO:root:Saving")).map(l -> l.substring(0, 15)).toList();
        assertEquals(List.of("DEBUG:root:dim:", "INFO:root:Score", "INFO:root:Savin",
                "DEBUG:root:dim:", "INFO:root:Score", "INFO:root:Savin",
                "INFO:root:Selec", "DEBUG:root:dim:", "INFO:root:Score", "INFO:root:Savin"), perRecipe);
        List<String> saving = lines.stream().filter(l -> l.startsWith("INFO:root:Saving ")).toList();
        assertEquals(3, saving.size());
        assertEquals("INFO:root:Saving " + out.resolve("mylora_frockpt1_th-3.3.safetensors"), saving.get(0));
        assertEquals("INFO:root:Saving " + out.resolve("mylora_spnlora1_th-1.5.safetensors"), saving.get(1));
        assertTrue(saving.get(2).startsWith("INFO:root:Saving " + out.resolve("mylora_frockpt0.8_params0.2_size0_th")));
        assertEquals(3, r.out().lines().count(), "the written files on stdout");
    }

    @Test
    void missingTextEncoder2ChunksNameTheCheckpointKeyAlone() throws IOException {
        // resize_lora logs base_key[0] for a row chunk, in its pairing order k, q, v (compat) or q, k, v
        Path te2ckpt = dir.resolve("te2.safetensors");
        String inProj = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight";
        SplittableRandom rnd = new SplittableRandom(3);
        new SafetensorsWriter()
                .addFloats(UNET + "input_blocks.1.0.in_layers.2.weight", StDType.F16, new long[] {8, 8, 3, 3}, random(rnd, 576, 0.2))
                .addFloats(TE1 + "11.mlp.fc1.weight", StDType.F16, new long[] {16, 8}, random(rnd, 128, 0.3))
                .addFloats(inProj, StDType.F16, new long[] {24, 8}, random(rnd, 192, 0.3))
                .write(te2ckpt);
        String te2 = "lora_te2_text_model_encoder_layers_0_self_attn_";
        for (boolean compat : new boolean[] {false, true}) {
            List<String> a = new ArrayList<>(List.of(args("-v", "-r", "fro_ckpt=1,thr=-3.3")));
            if (compat) {
                a.add("--compat");
            }
            a.addAll(List.of(te2ckpt.toString(), lora.toString()));
            Cli.Run r = run(a.toArray(String[]::new));
            assertEquals(0, r.exit(), r.err());
            List<String> missing = r.err().lines().filter(l -> l.startsWith("INFO:root:No LoRA layer for '" + inProj)).toList();
            List<String> order = compat ? List.of("k", "q", "v") : List.of("q", "k", "v");
            assertEquals(order.stream().map(c -> "INFO:root:No LoRA layer for '" + inProj + "' (24, 8), expected LoRA key: '"
                    + te2 + c + "_proj'").toList(), missing, r.err());
        }
    }

    @Test
    void defaultLevelShowsOnlyWarnings() {
        Cli.Run r = run(args("-r", "fro_ckpt=1,thr=-3.3", ckpt.toString(), lora.toString()));
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("WARNING:root:LoRA layer lora_te1_text_model_encoder_layers_11_mlp_fc1 is all zeroes! dim=4"),
                r.err().lines().filter(l -> l.contains(":root:")).toList());
    }

    @Test
    void writesBesideTheLoraWithoutOutputFolder() {
        Cli.Run r = run("resize", "--no-norms-cache", "-r", "fro_ckpt=1,thr=-3.3", ckpt.toString(), lora.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(Files.exists(dir.resolve("mylora_frockpt1_th-3.3.safetensors")));
    }

    /** Names and checksums of the files in the test folder (inputs unchanged, nothing added). */
    private String digest() throws Exception {
        StringBuilder sb = new StringBuilder();
        for (String name : Cli.listing(dir)) {
            Path p = dir.resolve(name);
            sb.append(name).append(Files.isRegularFile(p) ? " " + Cli.sha256(p) : "/").append('\n');
        }
        return sb.toString();
    }

    /** Runs a failing command line: exit 2, one error line naming the problem, nothing written. */
    private void fails(String expected, String... argv) throws Exception {
        String before = digest();
        Cli.Run r = run(argv);
        assertEquals(2, r.exit(), r.err());
        List<String> errLines = r.err().lines().filter(l -> l.contains("error")).toList();
        assertEquals(1, errLines.size(), r.err());
        assertTrue(errLines.get(0).startsWith("tenmin resize: error: "), r.err());
        assertTrue(errLines.get(0).contains(expected), "expected \"" + expected + "\" in: " + r.err());
        assertTrue(!Files.exists(out) || Files.list(out).findAny().isEmpty(), "no output");
        assertEquals(before, digest(), "inputs unchanged, nothing written beside them");
    }

    @Test
    void badRecipesAreOneLineErrors() throws Exception {
        fails("tenmin resize: error: Unknown key foo in recipe foo=1,thr=1", args("-r", "foo=1,thr=1", ckpt.toString(), lora.toString()));
        fails("Either 'size' or 'thr' must be specified in the recipe", args("-r", "fro_ckpt=1", ckpt.toString(), lora.toString()));
        fails("Could not parse thr=x in recipe fro_ckpt,thr=x",
                args("-r", "fro_ckpt=1,thr=-1:fro_ckpt,thr=x", ckpt.toString(), lora.toString()));
        fails("-t/--output_dtype", args("-t", "8", ckpt.toString(), lora.toString()));
        fails("--linalg: expected auto, openblas or java, got mkl", args("--linalg", "mkl", ckpt.toString(), lora.toString()));
    }

    @Test
    void javaAndOpenBlasKeepTheSameRanksAndWriteTheSameDeltas() throws IOException {
        String recipe = "fro_ckpt=1,thr=-3.3";
        Path javaOut = dir.resolve("java");
        Path blasOut = dir.resolve("blas");
        Cli.Run j = run("resize", "--no-norms-cache", "-vv", "-t", "32", "--linalg", "java", "-o", javaOut.toString(),
                "-r", recipe, ckpt.toString(), lora.toString());
        Cli.Run b = run("resize", "--no-norms-cache", "-vv", "-t", "32", "--linalg", "openblas", "-o", blasOut.toString(),
                "-r", recipe, ckpt.toString(), lora.toString());
        assertEquals(0, j.exit(), j.err());
        assertEquals(0, b.exit(), b.err());
        assertTrue(j.err().contains("DEBUG:root:Linear algebra: Java kernels"), j.err());
        assertTrue(b.err().contains("DEBUG:root:Linear algebra: OpenBLAS"), b.err());
        List<String> javaDims = j.err().lines().filter(l -> l.startsWith("DEBUG:root:dim:")).map(l -> l.substring(0, 24)).toList();
        List<String> blasDims = b.err().lines().filter(l -> l.startsWith("DEBUG:root:dim:")).map(l -> l.substring(0, 24)).toList();
        assertEquals(javaDims, blasDims, "kept ranks");
        String name = "mylora_frockpt1_th-3.3.safetensors";
        try (SafetensorsFile fj = SafetensorsFile.open(javaOut.resolve(name));
             SafetensorsFile fb = SafetensorsFile.open(blasOut.resolve(name))) {
            assertEquals(fj.names(), fb.names());
            DenseDelta.Delta dj = DenseDelta.of(fj, "lora_unet_input_blocks_1_0_in_layers_2");
            DenseDelta.Delta db = DenseDelta.of(fb, "lora_unet_input_blocks_1_0_in_layers_2");
            for (int i = 0; i < dj.values().length; i++) {
                assertEquals(dj.values()[i], db.values()[i], 1e-6 * dj.frobenius(), "delta element " + i);
            }
        }
    }

    @Test
    void anUnmappedModuleIsTheReferenceError() throws Exception {
        SafetensorsWriter extra = new SafetensorsWriter()
                .addFloats("lora_unet_not_a_layer.lora_down.weight", StDType.F16, new long[] {2, 4}, new float[8])
                .addFloats("lora_unet_not_a_layer.lora_up.weight", StDType.F16, new long[] {4, 2}, new float[8])
                .addFloats("lora_unet_not_a_layer.alpha", StDType.F16, new long[0], new float[] {1});
        writeLora(lora, Map.of(), extra);
        fails("Target layer not found for LoRA lora_unet_not_a_layer", args(ckpt.toString(), lora.toString()));
    }

    @Test
    void aModuleWithoutAlphaIsTheReferenceError() throws Exception {
        SafetensorsWriter extra = new SafetensorsWriter()
                .addFloats("lora_unet_time_embed_0.lora_down.weight", StDType.F16, new long[] {2, 8}, new float[16])
                .addFloats("lora_unet_time_embed_0.lora_up.weight", StDType.F16, new long[] {16, 2}, new float[32]);
        writeLora(lora, Map.of(), extra);
        fails("Target layer not found for LoRA lora_unet_time_embed_0", args(ckpt.toString(), lora.toString()));
    }

    @Test
    void malformedModulesAndFilesAreOneLineErrors() throws Exception {
        SafetensorsWriter tucker = new SafetensorsWriter()
                .addFloats("lora_unet_time_embed_0.lora_down.weight", StDType.F16, new long[] {2, 8}, new float[16])
                .addFloats("lora_unet_time_embed_0.lora_mid.weight", StDType.F16, new long[] {2, 2}, new float[4])
                .addFloats("lora_unet_time_embed_0.lora_up.weight", StDType.F16, new long[] {16, 2}, new float[32])
                .addFloats("lora_unet_time_embed_0.alpha", StDType.F16, new long[0], new float[] {1});
        writeLora(lora, Map.of(), tucker);
        fails("module lora_unet_time_embed_0: Tucker LoCon (lora_mid.weight) is not supported",
                args(ckpt.toString(), lora.toString()));

        SafetensorsWriter wrongShape = new SafetensorsWriter()
                .addFloats("lora_unet_time_embed_0.lora_down.weight", StDType.F16, new long[] {2, 8}, new float[16])
                .addFloats("lora_unet_time_embed_0.lora_up.weight", StDType.F16, new long[] {12, 2}, new float[24])
                .addFloats("lora_unet_time_embed_0.alpha", StDType.F16, new long[0], new float[] {1});
        writeLora(lora, Map.of(), wrongShape);
        fails("module lora_unet_time_embed_0: delta is (12, 8) but checkpoint weight model.diffusion_model.time_embed.0.weight"
                + " is (16, 8)", args(ckpt.toString(), lora.toString()));

        writeLora(lora, Map.of(), null);
        byte[] bytes = Files.readAllBytes(lora);
        Files.write(lora, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        fails("not a valid safetensors file", args(ckpt.toString(), lora.toString()));
        bytes[9] = '[';
        Files.write(lora, bytes);
        fails("not a valid safetensors file", args(ckpt.toString(), lora.toString()));
        Files.write(lora, bytes.length > 0 ? java.util.Arrays.copyOf(bytes, 4) : bytes);
        fails("not a valid safetensors file", args(ckpt.toString(), lora.toString()));
    }

    @Test
    void missingFilesAndBadOutputFoldersAreOneLineErrors() throws Exception {
        fails("no such file", args(dir.resolve("nope.safetensors").toString(), lora.toString()));
        fails("no such file", args(ckpt.toString(), dir.resolve("nope.safetensors").toString()));
        fails("merging LoRAs", args(ckpt.toString(), "a.safetensors:0.6,b.safetensors:0.4"));
        Path file = dir.resolve("file");
        Files.writeString(file, "x");
        Cli.Run r = run("resize", "--no-norms-cache", "-o", file.toString(), ckpt.toString(), lora.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("output folder is a file"), r.err());
        Files.delete(file);
        // the checkpoint given as the LoRA and vice versa
        fails("not a LoRA file", args(lora.toString(), ckpt.toString()));
    }

    @Test
    void recipesThatNameTheSameFileAreRefusedBeforeWriting() throws Exception {
        fails("a second time", args("-r", "fro_ckpt=1,thr=-1.501:fro_ckpt=2,thr=-1.499", ckpt.toString(), lora.toString()));
    }

    @Test
    void normsCacheOptionsContradictingAreRefused() throws Exception {
        Cli.Run r = run("resize", "--no-norms-cache", "--norms-cache", dir.resolve("c.json").toString(), ckpt.toString(),
                lora.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("contradict"), r.err());
    }

    @Test
    void helpListsExitCodesAndAnExample() {
        Cli.Run r = run("resize", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("Exit codes:") && r.out().contains("Example:") && r.out().contains("--compat"), r.out());
    }
}
