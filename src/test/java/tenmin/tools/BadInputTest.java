package tenmin.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.testing.Cli;
import tenmin.testing.Fixtures;

/**
 * Every subcommand on truncated, corrupted and hostile files and malformed vectors: exit code 2, a
 * one-line error naming the file or argument, no output file left behind, the inputs unchanged.
 */
class BadInputTest {

    private static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        return b.array();
    }

    /** Broken files by name; each must be rejected by every command that reads it. */
    private static Map<String, byte[]> badFiles() throws IOException {
        byte[] good = Files.readAllBytes(Fixtures.modelDirs().get(0).resolve("locon.safetensors"));
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("empty.safetensors", new byte[0]);
        m.put("short.safetensors", new byte[] {1, 2, 3});
        m.put("truncated.safetensors", Arrays.copyOf(good, good.length / 2));
        byte[] huge = good.clone();
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 62);
        m.put("huge-header.safetensors", huge);
        byte[] garbage = good.clone();
        for (int i = 8; i < 40; i++) {
            garbage[i] = (byte) 0xC3;
        }
        m.put("garbage-header.safetensors", garbage);
        m.put("overlap.safetensors", file("{\"lora_unet_a.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"lora_unet_a.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]));
        m.put("past-end.safetensors", file("{\"lora_unet_a.alpha\":{\"dtype\":\"F32\",\"shape\":[1000000],\"data_offsets\":[0,4000000]}}",
                new byte[8]));
        m.put("bad-dtype.safetensors", file("{\"lora_unet_a.alpha\":{\"dtype\":\"Q7\",\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]));
        m.put("not-json.safetensors", file("this is not json at all!", new byte[0]));
        m.put("inconsistent-lora.safetensors", file("{\"lora_unet_input_blocks_4_1_proj_in.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                + "\"lora_unet_input_blocks_4_1_proj_in.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[24,72]}}", new byte[72]));
        return m;
    }

    private record Case(String label, String[] args) {
    }

    private static void expectRejected(Path dir, Case c, List<Path> inputs) {
        List<String> before = Cli.listing(dir);
        List<String> sums = inputs.stream().map(p -> Files.isRegularFile(p) ? Cli.sha256(p) : "").toList();
        Cli.Run r = Cli.run(c.args());
        assertEquals(2, r.exit(), c.label() + ": " + r);
        assertEquals(1, r.err().lines().count(), c.label() + ": " + r.err());
        assertTrue(r.err().contains(": error: "), c.label() + ": " + r.err());
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), c.label() + ": " + r.err());
        assertEquals(before, Cli.listing(dir), c.label() + ": no output or temporary file left");
        for (int i = 0; i < inputs.size(); i++) {
            if (Files.isRegularFile(inputs.get(i))) {
                assertEquals(sums.get(i), Cli.sha256(inputs.get(i)), c.label() + ": input unchanged");
            }
        }
    }

    @Test
    void everySubcommandRejectsBrokenFiles(@TempDir Path tmp) throws IOException {
        Path ckpt = Fixtures.modelDirs().get(0).resolve("checkpoint.safetensors");
        Path goodLora = tmp.resolve("good.safetensors");
        Files.copy(Fixtures.modelDirs().get(0).resolve("locon.safetensors"), goodLora);
        Map<String, byte[]> bad = badFiles();
        bad.put("missing.safetensors", null);
        for (Map.Entry<String, byte[]> e : bad.entrySet()) {
            Path p = tmp.resolve(e.getKey());
            if (e.getValue() != null) {
                Files.write(p, e.getValue());
            }
            String f = p.toString();
            String out = tmp.resolve("out.safetensors").toString();
            boolean headerOk = e.getKey().startsWith("inconsistent");
            List<Case> cases = new ArrayList<>();
            if (!headerOk) { // a structurally valid file with an inconsistent module is fine to chop/analyse
                cases.add(new Case("chop " + e.getKey(), new String[] {"chop", f}));
                cases.add(new Case("chop+vector " + e.getKey(), new String[] {"chop", f, "1,1"}));
                cases.add(new Case("inspect " + e.getKey(), new String[] {"inspect", f}));
                cases.add(new Case("merge ckpt=" + e.getKey(), new String[] {"merge", f, goodLora.toString(), "-o", out}));
            }
            cases.add(new Case("blocks " + e.getKey(), new String[] {"blocks", f, "%default=0.5", "-o", out}));
            cases.add(new Case("merge lora=" + e.getKey(), new String[] {"merge", ckpt.toString(), f, "-o", out}));
            for (Case c : cases) {
                expectRejected(tmp, c, List.of(p, goodLora));
            }
        }
    }

    @Test
    void malformedVectorsAndArgumentsAreRejected(@TempDir Path tmp) throws IOException {
        Path ckpt = Fixtures.modelDirs().get(0).resolve("checkpoint.safetensors");
        Path lora = tmp.resolve("good.safetensors");
        Files.copy(Fixtures.modelDirs().get(0).resolve("locon.safetensors"), lora);
        String l = lora.toString();
        String out = tmp.resolve("out.safetensors").toString();
        List<Case> cases = List.of(
                new Case("chop short", new String[] {"chop", l, "1,0,0"}),
                new Case("chop letters", new String[] {"chop", l, "1" + ",x".repeat(20)}),
                new Case("blocks junk", new String[] {"blocks", l, "junk"}),
                new Case("blocks bad token", new String[] {"blocks", l, "1,2,3,4,5,6,7,8,9,10,11,Z"}),
                new Case("blocks bad shorthand", new String[] {"blocks", l, "%in=1,what=2"}),
                new Case("blocks all zero", new String[] {"blocks", l, "SDXL-LyC-NONE"}),
                new Case("merge bad blocks", new String[] {"merge", ckpt.toString(), l, "--blocks", "nope", "-o", out}),
                new Case("merge bad weight", new String[] {"merge", ckpt.toString(), l + ":inf", "-o", out}),
                new Case("merge no -o", new String[] {"merge", ckpt.toString(), l}),
                new Case("merge output over input", new String[] {"merge", ckpt.toString(), l, "-o", l}),
                new Case("merge output in missing folder", new String[] {"merge", ckpt.toString(), l, "-o",
                        tmp.resolve("no/such/dir/x.safetensors").toString()}),
                new Case("inspect no file", new String[] {"inspect"}),
                new Case("chop unknown option", new String[] {"chop", l, "--bogus"}));
        for (Case c : cases) {
            if (c.label().startsWith("inspect no file") || c.label().startsWith("chop unknown") || c.label().startsWith("merge no -o")) {
                Cli.Run r = Cli.run(c.args());
                assertEquals(2, r.exit(), c.label() + ": " + r);
                continue;
            }
            expectRejected(tmp, c, List.of(lora, ckpt));
        }
    }
}
