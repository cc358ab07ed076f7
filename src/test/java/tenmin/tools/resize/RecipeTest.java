package tenmin.tools.resize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;

/** The recipe grammar, names and resize_params of postprocess-spec §2.2 and §2.7. */
class RecipeTest {
    private static String error(String recipes) {
        return assertThrows(InputException.class, () -> Recipe.parseAll(recipes)).getMessage();
    }

    @Test
    void normalisesWeightsInTheReferenceOrder() {
        Recipe r = Recipe.parse("fro_ckpt=3,spn_lora,thr=-2");
        assertEquals(List.of("spn_lora", "spn_ckpt", "subspace", "fro_lora", "fro_ckpt", "params"),
                List.copyOf(r.weights().keySet()));
        assertEquals(0.25, r.weight("spn_lora"));
        assertEquals(0.75, r.weight("fro_ckpt"));
        assertEquals(-2.0, r.threshold());
        assertNull(r.targetSize());
        assertEquals(1.0, r.rescale());
    }

    @Test
    void laterDuplicatesWinAndSizeWinsOverThr() {
        Recipe r = Recipe.parse("fro_ckpt=1,fro_ckpt=2,thr=1,size=50,thr=-1");
        assertEquals(1.0, r.weight("fro_ckpt"));
        assertEquals(-1.0, r.threshold());
        assertTrue(r.sizeMode());
    }

    @Test
    void parsesValuesAsPythonFloatDoes() {
        assertEquals(-1000.0, Recipe.parse("fro_ckpt,thr= -1_000 ").threshold());
        Recipe r = Recipe.parse("fro_ckpt=.5,spn_lora=1.5,thr=5.");
        assertEquals(0.25, r.weight("fro_ckpt"));
        assertEquals(5.0, r.threshold());
        assertEquals(Double.NEGATIVE_INFINITY, Recipe.parse("fro_ckpt,thr=-Infinity").threshold());
        assertEquals(-1e-3, Recipe.parse("fro_ckpt,thr=-1E-3").threshold());
        for (String bad : List.of("1__0", "_1", "0x10", "1d", "1e", "--1")) {
            assertEquals("Could not parse thr=" + bad + " in recipe fro_ckpt,thr=" + bad, error("fro_ckpt,thr=" + bad));
        }
    }

    @Test
    void reportsTheReferenceErrorMessages() {
        assertEquals("Unknown key foo in recipe fro_ckpt=1,foo=2,thr=1", error("fro_ckpt=1,foo=2,thr=1"));
        assertEquals("Unknown key  thr in recipe fro_ckpt=1, thr=1", error("fro_ckpt=1, thr=1"));
        assertEquals("Empty value not accepted for key thr in recipe fro_ckpt=1,thr", error("fro_ckpt=1,thr"));
        assertEquals("Empty value not accepted for key  in recipe fro_ckpt=1,thr=1,", error("fro_ckpt=1,thr=1,"));
        assertEquals("Could not parse thr=abc in recipe fro_ckpt,thr=abc", error("fro_ckpt,thr=abc"));
        assertEquals("Could not parse fro_ckpt=1=2 in recipe fro_ckpt=1=2,thr=1", error("fro_ckpt=1=2,thr=1"));
        assertEquals("At least one score type must be specified", error("thr=-1"));
        assertEquals("At least one score type must be specified", error("fro_ckpt=1,spn_lora=-1,thr=-1"));
        assertEquals("Either 'size' or 'thr' must be specified in the recipe", error("fro_ckpt=1"));
        // the second recipe of a list is checked too
        assertEquals("Empty value not accepted for key  in recipe ", error("fro_ckpt=1,thr=-3.55:"));
    }

    @Test
    void refusesValuesTheReferenceWouldCrashOrMisbehaveOn() {
        assertTrue(error("fro_ckpt=1,thr=-1,rescale=0").contains("rescale"));
        assertTrue(error("fro_ckpt=1,thr=-1,rescale=-2").contains("rescale"));
        assertTrue(error("fro_ckpt=1,size=0").contains("size"));
        assertTrue(error("fro_ckpt=1,thr=nan").contains("thr=nan"));
        assertTrue(error("fro_ckpt=inf,thr=1").contains("fro_ckpt=inf"));
    }

    @Test
    void namesOutputsLikeTheReference() {
        assertEquals("X_frockpt1_th-3.55.safetensors", Recipe.parse("fro_ckpt=1,thr=-3.55").outputFileName("X", -3.55));
        assertEquals("X_frockpt0.8_params0.2_size50_th-3.73.safetensors",
                Recipe.parse("fro_ckpt=0.8,params=0.2,size=50").outputFileName("X", (float) -3.725802421569824));
        assertEquals("X_frockpt0.75_spnlora0.25_th-2.safetensors",
                Recipe.parse("fro_ckpt=3,spn_lora=1,thr=-2").outputFileName("X", -2));
        assertEquals("mylora_spnlora1_th-1.safetensors", Recipe.parse("spn_lora=1,thr=-1").outputFileName("mylora", -1));
        assertEquals("X_frockpt1_scale0.5_th-inf.safetensors",
                Recipe.parse("fro_ckpt,rescale=0.5,thr=-inf").outputFileName("X", Double.NEGATIVE_INFINITY));
        assertEquals("X_frockpt2_spnlora-1_th0.safetensors",
                Recipe.parse("fro_ckpt=2,spn_lora=-1,thr=0.001").outputFileName("X", 0.001));
        assertEquals("X_frockpt1_size0.01_th-3.73.safetensors",
                Recipe.parse("fro_ckpt=1,size=0.01").outputFileName("X", -3.726));
        // format(v, ".2f") rounds the binary value half-even: 2.675 is 2.67499999...
        assertEquals("X_params1_th2.67.safetensors", Recipe.parse("params,thr=2.675").outputFileName("X", 2.675));
    }

    @Test
    void writesResizeParamsAsJsonDumps() {
        assertEquals("{\"recipe_str\": \"fro_ckpt=1,thr=-3.55\", \"weights\": {\"spn_lora\": 0.0, \"spn_ckpt\": 0.0,"
                + " \"subspace\": 0.0, \"fro_lora\": 0.0, \"fro_ckpt\": 1.0, \"params\": 0.0}, \"target_size\": null,"
                + " \"threshold\": -3.55, \"rescale\": 1.0}", Recipe.parse("fro_ckpt=1,thr=-3.55").resizeParamsJson(-3.55));
        assertEquals("{\"recipe_str\": \"fro_ckpt=0.8,params=0.2,size=0.01\", \"weights\": {\"spn_lora\": 0.0,"
                + " \"spn_ckpt\": 0.0, \"subspace\": 0.0, \"fro_lora\": 0.0, \"fro_ckpt\": 0.8, \"params\": 0.2},"
                + " \"target_size\": 0.01, \"threshold\": -3.725802421569824, \"rescale\": 1.0}",
                Recipe.parse("fro_ckpt=0.8,params=0.2,size=0.01").resizeParamsJson((float) -3.725802421569824));
        // normalising by a negative sum gives -0.0 for the unused weights, as Python does
        assertEquals("{\"recipe_str\": \"spn_lora=-1,size=5,rescale=2\", \"weights\": {\"spn_lora\": 1.0,"
                + " \"spn_ckpt\": -0.0, \"subspace\": -0.0, \"fro_lora\": -0.0, \"fro_ckpt\": -0.0, \"params\": -0.0},"
                + " \"target_size\": 5.0, \"threshold\": -Infinity, \"rescale\": 2.0}",
                Recipe.parse("spn_lora=-1,size=5,rescale=2").resizeParamsJson(Double.NEGATIVE_INFINITY));
    }
}
