package tenmin.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.SafetensorsFile;
import tenmin.formats.StDType;
import tenmin.testing.Cli;
import tenmin.testing.DenseDelta;
import tenmin.testing.Fixtures;
import tenmin.testing.SyntheticLora;

/** {@code tenmin inspect}: norms against dense deltas, block sums, metadata, hashes against direct SHA-256. */
class InspectTest {

    private static JsonNode json(String... args) throws IOException {
        String[] all = new String[args.length + 2];
        all[0] = "inspect";
        all[1] = "--json";
        System.arraycopy(args, 0, all, 2, args.length);
        Cli.Run r = Cli.run(all);
        assertEquals(0, r.exit(), r.toString());
        return new ObjectMapper().readTree(r.out());
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Bytes after the 8-byte length and the header, read here from the file's first 8 bytes. */
    private static byte[] dataSection(byte[] file) {
        long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return Arrays.copyOfRange(file, (int) (8 + n), file.length);
    }

    @Test
    void moduleNormsAndBlockEnergiesOfTheFixtureLocon() throws IOException {
        Path p = Fixtures.modelDirs().get(0).resolve("locon.safetensors");
        JsonNode r = json(p.toString());
        assertEquals("lora", r.get("kind").asText());
        Map<String, Double> byBlock = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(258, r.get("modules").size());
            for (JsonNode m : r.get("modules")) {
                String name = m.get("name").asText();
                double expected = DenseDelta.of(f, name).frobenius();
                assertEquals(expected, m.get("normF").asDouble(), 1e-5 * expected, name);
                String[] parts = name.split("_");
                String block = parts[2] + "_" + parts[3] + "." + parts[4]; // input_blocks.4, middle_block.1
                byBlock.merge(block, expected, Double::sum);
                assertEquals(f.readScalar(name + ".alpha"), m.get("alpha").asDouble(), 0);
                assertEquals(f.info(name + ".lora_down.weight").dim(0), m.get("rank").asInt());
                assertEquals(f.info(name + ".lora_down.weight").rank() == 4 && f.info(name + ".lora_down.weight").dim(2) == 3
                        ? "conv 3x3" : f.info(name + ".lora_down.weight").rank() == 4 ? "conv 1x1" : "linear", m.get("type").asText());
            }
        }
        JsonNode blocks = r.get("blocks");
        assertEquals(21, blocks.size());
        assertEquals("BASE", blocks.get(0).get("block").asText());
        double shares = 0;
        for (int i = 1; i < blocks.size(); i++) {
            JsonNode b = blocks.get(i);
            String key = b.get("block").asText();
            Double expected = byBlock.get(key);
            assertNotNull(expected, key + " in " + byBlock.keySet());
            assertEquals(expected, b.get("energy").asDouble(), 1e-5 * expected, key);
            shares += b.get("share").asDouble();
        }
        assertEquals(1.0, shares, 1e-9);
        assertEquals("OUT01", blocks.get(13).get("chopName").asText());
        assertEquals("MID", blocks.get(10).get("lbw20Slot").asText());
        assertEquals(13, blocks.get(13).get("inspireSlot").asInt());
    }

    @Test
    void zeroModulesAndJsonMetadataAreReported(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("z.safetensors");
        List<SyntheticLora.Module> mods = List.of(
                new SyntheticLora.Module("lora_te1_text_model_encoder_layers_11_mlp_fc1", 12, 8, 1, false, 2, 1),
                new SyntheticLora.Module("lora_unet_output_blocks_1_1_proj_in", 8, 8, 1, false, 2, 1));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("ss_network_args", "{\"conv_dim\": \"256\", \"algo\": \"locon\"}");
        meta.put("ss_tag_frequency", "{\"1_cat\": {\"cat\": 12, \"solo\": 3}}");
        meta.put("ss_output_name", "z");
        SyntheticLora.write(p, mods, StDType.F16, 4, meta);
        // zero the text encoder's up like sd-scripts leaves te1 layer 11: rewrite that tensor's bytes
        byte[] bytes = Files.readAllBytes(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            var info = f.info("lora_te1_text_model_encoder_layers_11_mlp_fc1.lora_up.weight");
            Arrays.fill(bytes, (int) (f.dataStart() + info.begin()), (int) (f.dataStart() + info.end()), (byte) 0);
        }
        Files.write(p, bytes);
        JsonNode r = json(p.toString());
        assertEquals(List.of("lora_te1_text_model_encoder_layers_11_mlp_fc1"),
                new ObjectMapper().convertValue(r.get("zeroModules"), List.class));
        assertEquals("256", r.get("metadata").get("ss_network_args").get("conv_dim").asText());
        assertEquals(12, r.get("metadata").get("ss_tag_frequency").get("1_cat").get("cat").asInt());
        assertEquals("z", r.get("metadata").get("ss_output_name").asText());

        Cli.Run text = Cli.run("inspect", p.toString());
        assertEquals(0, text.exit(), text.toString());
        assertTrue(text.out().contains("  ss_network_args:\n    {\n      \"conv_dim\": \"256\",\n      \"algo\": \"locon\"\n    }\n"), text.out());
        assertTrue(text.out().contains("Zero modules (no effect): 1 — lora_te1_text_model_encoder_layers_11_mlp_fc1"), text.out());
        assertTrue(text.out().contains("ZERO"), text.out());
    }

    @Test
    void hashesMatchDirectSha256AndCheckStoredSshsValues(@TempDir Path tmp) throws IOException {
        // over 1 MiB so that kohya's legacy hash covers data bytes
        List<SyntheticLora.Module> mods = List.of(new SyntheticLora.Module("lora_unet_input_blocks_4_1_proj_in", 640, 640, 1, false, 512, 1));
        Path plain = tmp.resolve("plain.safetensors");
        SyntheticLora.write(plain, mods, StDType.F16, 9, Map.of("ss_output_name", "x"));
        byte[] file = Files.readAllBytes(plain);
        assertTrue(file.length > 0x110000);
        String sha = sha256(file);
        String data = sha256(dataSection(file));
        // a file saved with only ss_* metadata is its own "kohya serialisation": legacy = 8 hex of 64 KiB at 1 MiB
        String legacy = sha256(Arrays.copyOfRange(file, 0x100000, 0x110000)).substring(0, 8);

        Path stamped = tmp.resolve("stamped.safetensors");
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("ss_output_name", "x");
        meta.put("sshs_model_hash", data);
        meta.put("sshs_legacy_hash", legacy);
        meta.put("modelspec.title", "not an ss_ key, ignored by the legacy hash");
        SyntheticLora.write(stamped, mods, StDType.F16, 9, meta);
        JsonNode r = json(stamped.toString());
        JsonNode h = r.get("hashes");
        byte[] stampedBytes = Files.readAllBytes(stamped);
        assertEquals(sha256(stampedBytes), h.get("sha256").asText());
        assertEquals(sha256(stampedBytes).substring(0, 10), h.get("autoV2").asText());
        assertEquals(data, h.get("dataSha256").asText(), "metadata edits do not change the data hash");
        assertEquals(data.substring(0, 12), h.get("loraHash").asText());
        for (JsonNode c : h.get("checks")) {
            assertTrue(c.get("matches").asBoolean(), c.toString());
        }
        assertEquals(2, h.get("checks").size());
        assertTrue(!sha.equals(h.get("sha256").asText()));

        Path wrong = tmp.resolve("wrong.safetensors");
        meta.put("sshs_model_hash", "0".repeat(64));
        SyntheticLora.write(wrong, mods, StDType.F16, 9, meta);
        Cli.Run text = Cli.run("inspect", wrong.toString());
        assertTrue(text.out().contains("sshs_model_hash      " + "0".repeat(64) + "   DOES NOT MATCH (computed " + data + ")"), text.out());
        assertTrue(text.out().contains("sshs_legacy_hash     " + legacy + "   matches"), text.out());

        // LyCORIS-style "0x..." hashes follow the trainer's state-dict order: reported, never a mismatch
        Path lycoris = tmp.resolve("lycoris.safetensors");
        meta.put("sshs_model_hash", "0x" + "1".repeat(64));
        SyntheticLora.write(lycoris, mods, StDType.F16, 9, meta);
        Cli.Run ly = Cli.run("inspect", lycoris.toString());
        assertTrue(!ly.out().contains("DOES NOT MATCH (computed " + data), ly.out());
        assertTrue(ly.out().contains("LyCORIS rule"), ly.out());
    }

    @Test
    void checkpointSummaryCountsComponentsAsTheFixtureReadmeDoes() throws IOException {
        Path p = Fixtures.modelDirs().get(0).resolve("checkpoint.safetensors");
        JsonNode r = json(p.toString());
        assertEquals("checkpoint", r.get("kind").asText());
        Map<String, Integer> counts = new HashMap<>();
        for (JsonNode c : r.get("components")) {
            counts.put(c.get("name").asText(), c.get("tensors").asInt());
        }
        // fixtures README §3: U-Net 620, TE1 53 incl. position_ids, TE2 42, VAE 184
        assertEquals(Map.of("UNet", 620, "text encoder 1", 53, "text encoder 2", 42, "VAE", 184), counts);
        byte[] file = Files.readAllBytes(p);
        assertEquals(sha256(file), r.get("hashes").get("sha256").asText());
        assertEquals(sha256(Arrays.copyOfRange(file, 0x100000, 0x110000)).substring(0, 8), r.get("hashes").get("legacy").asText());
        Cli.Run text = Cli.run("inspect", "--no-hash", p.toString());
        assertEquals(0, text.exit());
        assertTrue(text.out().contains("Hashes: skipped"), text.out());
    }

    @Test
    void helpListsExitCodesAndAnExample() {
        Cli.Run r = Cli.run("inspect", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("Exit codes:") && r.out().contains("Example:"), r.out());
    }
}
