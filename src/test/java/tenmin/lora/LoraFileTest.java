package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.testing.Fixtures;

/** LoraFile/LoraModule read the fixture LoCon exactly as LyCORIS built it (lora-modules.json). */
class LoraFileTest {

    @Test
    void readsEveryFixtureModuleWithItsKindRankAlphaAndShape() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(Fixtures.require("lora-modules.json").toFile());
        for (Path dir : Fixtures.modelDirs()) {
            checkAgainst(expected.get("unet"), dir.resolve("locon.safetensors"));
            checkAgainst(expected.get("te"), dir.resolve("te-locon.safetensors"));
        }
    }

    private static void checkAgainst(JsonNode modules, Path file) {
        try (LoraFile lora = LoraFile.open(file)) {
            assertEquals(modules.size(), lora.modules().size(), file + " module count");
            for (JsonNode m : modules) {
                String name = m.get("lora_name").asText();
                LoraModule mod = lora.module(name);
                assertNotNull(mod, name);
                assertTrue(mod.isSupported(), name + ": " + mod.problem());
                boolean conv = m.get("kind").asText().equals("conv");
                assertEquals(conv ? LoraModule.Type.CONV : LoraModule.Type.LINEAR, mod.type(), name);
                assertEquals(m.get("rank").asInt(), mod.rank(), name);
                assertEquals(m.get("alpha").asDouble(), mod.alpha(), 0, name);
                assertEquals(m.get("alpha").asDouble() / m.get("rank").asInt(), mod.scale(), 1e-12, name);
                assertEquals(m.get("in").asLong(), mod.inFeatures(), name);
                assertEquals(m.get("out").asLong(), mod.outFeatures(), name);
                int k = m.get("kernel").asInt();
                assertEquals(conv ? k : 1, mod.kernelHeight(), name);
                assertEquals(m.get("in").asLong() * (conv ? k * k : 1), mod.columns(), name);
                assertEquals(mod.outFeatures() * mod.rank(), mod.readUp().length, name);
                assertEquals((long) mod.rank() * mod.columns(), mod.readDown().length, name);
                assertEquals(StDType.F32, mod.dtype());
                assertFalse(mod.hasDora());
            }
        }
    }

    @Test
    void reportsUnsupportedAndInconsistentModulesWithoutFailingToOpen(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("odd.safetensors");
        new SafetensorsWriter()
                .addFloats("lora_unet_a.hada_w1_a", StDType.F32, new long[] {2, 2}, new float[4])
                .addFloats("lora_unet_b.lora_down.weight", StDType.F32, new long[] {2, 3}, new float[6])
                .addFloats("lora_unet_b.lora_up.weight", StDType.F32, new long[] {4, 3}, new float[12])
                .addFloats("lora_unet_c.lora_down.weight", StDType.F32, new long[] {2, 3}, new float[6])
                .addFloats("lora_unet_c.lora_up.weight", StDType.F32, new long[] {4, 2}, new float[8])
                .addFloats("lora_unet_c.lora_mid.weight", StDType.F32, new long[] {2, 2, 3, 3}, new float[36])
                .addFloats("lora_unet_d.lora_down.weight", StDType.F32, new long[] {2, 3}, new float[6])
                .addFloats("lora_unet_d.lora_up.weight", StDType.F32, new long[] {4, 2}, new float[8])
                .write(p);
        try (LoraFile lora = LoraFile.open(p)) {
            assertEquals("loha (unsupported)", lora.module("lora_unet_a").typeLabel());
            assertTrue(lora.module("lora_unet_b").problem().contains("rank mismatch"), lora.module("lora_unet_b").problem());
            assertEquals(LoraModule.Type.TUCKER, lora.module("lora_unet_c").type());
            InputException e = assertThrows(InputException.class, () -> lora.module("lora_unet_b").rank());
            assertTrue(e.getMessage().contains("lora_unet_b") && e.getMessage().contains(p.toString()), e.getMessage());
            LoraModule d = lora.module("lora_unet_d");
            assertNull(d.problem());
            assertFalse(d.hasAlpha());
            assertEquals(2.0, d.alpha(), 0, "missing alpha means alpha = rank");
            assertEquals(1.0, d.scale(), 0);
        }
    }

    @Test
    void refusesFilesWithoutLoraKeys() {
        Path ckpt = Fixtures.modelDirs().get(0).resolve("checkpoint.safetensors");
        InputException e = assertThrows(InputException.class, () -> LoraFile.open(ckpt));
        assertTrue(e.getMessage().contains("not a LoRA file"), e.getMessage());
    }
}
