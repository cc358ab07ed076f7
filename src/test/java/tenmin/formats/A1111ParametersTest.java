package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import tenmin.formats.A1111Parameters.Info;
import tenmin.formats.A1111Parameters.Lora;

/**
 * Expected strings are written out by hand from A1111's rules (field order of {@code create_infotext},
 * {@code quote}: JSON only for values with ',', ':' or newline; "Negative prompt:" line only when not empty).
 */
class A1111ParametersTest {

    @Test
    void typicalImage() {
        Info info = Info.basic("a photo of a cat, (detailed:1.2)", "blurry, lowres", 30, "Euler a", 7, 42, 1024, 1024)
                .withModel("31e35c80fc", "sd_xl_base_1.0")
                .withLoras(List.of(new Lora("my_lora", "0123456789ab")))
                .withVersion("tenmin 0.1.0");
        assertEquals("a photo of a cat, (detailed:1.2)\n"
                + "Negative prompt: blurry, lowres\n"
                + "Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 1024x1024, Model hash: 31e35c80fc, "
                + "Model: sd_xl_base_1.0, Lora hashes: \"my_lora: 0123456789ab\", Version: tenmin 0.1.0",
                A1111Parameters.format(info));
    }

    @Test
    void emptyNegativePromptHasNoLineAndOptionalFieldsAreLeftOut() {
        Info info = Info.basic("cat", "", 20, "DPM++ 2M", 7.5, 1, 832, 1216).withScheduleType("Karras");
        assertEquals("cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1, Size: 832x1216",
                A1111Parameters.format(info));
    }

    @Test
    void valuesWithCommasColonsOrNewlinesAreJsonQuoted() {
        Map<String, String> extra = new LinkedHashMap<>();
        extra.put("Note", "a \"b\", c\\d");
        extra.put("Plain", "no separators here");
        Info info = Info.basic("p", "n", 1, "Euler", 1, 2, 64, 64)
                .withModel("abc", "model, v2")
                .withRng("CPU")
                .withLoras(List.of(new Lora("style:v1,final", "111111111111"), new Lora("b", "222222222222")))
                .withExtra(extra)
                .withVersion("tenmin 0.1.0");
        assertEquals("p\nNegative prompt: n\n"
                + "Steps: 1, Sampler: Euler, CFG scale: 1, Seed: 2, Size: 64x64, Model hash: abc, Model: \"model, v2\", "
                + "RNG: CPU, Lora hashes: \"stylev1final: 111111111111, b: 222222222222\", "
                + "Note: \"a \\\"b\\\", c\\\\d\", Plain: no separators here, Version: tenmin 0.1.0",
                A1111Parameters.format(info));
    }

    /** A separate VAE: "VAE hash" then "VAE" after the model, as A1111's create_infotext orders them. */
    @Test
    void aSeparateVaeFollowsTheModel() {
        Info info = Info.basic("p", "", 20, "Euler a", 7, 1, 1024, 1024).withModel("31e35c80fc", "sd_xl_base_1.0")
                .withVae("235745af8d", "sdxl_vae.safetensors").withRng("CPU");
        assertEquals("p\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 1024x1024, Model hash: 31e35c80fc,"
                + " Model: sd_xl_base_1.0, VAE hash: 235745af8d, VAE: sdxl_vae.safetensors, RNG: CPU",
                A1111Parameters.format(info));
    }

    @Test
    void jsonQuotingEscapesLikePython() {
        assertEquals("\"a\\nb\\t\\u0001 é 😀\"", A1111Parameters.jsonString("a\nb\t\u0001 é 😀"));
        assertEquals("x", A1111Parameters.quote("x"));
        assertEquals("\"a:b\"", A1111Parameters.quote("a:b"));
    }

    @Test
    void multiLinePromptsAndSurroundingWhitespace() {
        Info info = Info.basic("  line one\nline two  ", "neg one\nneg two", 5, "DDIM", 3, 9, 512, 768);
        String text = A1111Parameters.format(info);
        assertEquals("line one\nline two  \nNegative prompt: neg one\nneg two\n"
                + "Steps: 5, Sampler: DDIM, CFG scale: 3, Seed: 9, Size: 512x768", text);
    }

    @Test
    void parsesWhatA1111Writes() {
        // the example of A1111's parse_generation_parameters docstring
        Map<String, String> p = A1111Parameters.parse("girl with an artist's beret, ((eyeshadow)), detailed\n"
                + "Negative prompt: ugly, [blurry], (extra_limb)\n"
                + "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b");
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put("Prompt", "girl with an artist's beret, ((eyeshadow)), detailed");
        expected.put("Negative prompt", "ugly, [blurry], (extra_limb)");
        expected.put("Steps", "20");
        expected.put("Sampler", "Euler a");
        expected.put("CFG scale", "7");
        expected.put("Seed", "965400086");
        expected.put("Size", "512x512");
        expected.put("Model hash", "45dee52b");
        assertEquals(expected, p);
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(p.keySet()));
    }

    @Test
    void roundTripsQuotedValues() {
        Info info = Info.basic("p, q", "n", 30, "Euler a", 7, 42, 1024, 1024)
                .withModel("31e35c80fc", "m, x")
                .withLoras(List.of(new Lora("a", "0123456789ab")))
                .withExtra(Map.of("Note", "say \"hi\"\nthere"));
        Map<String, String> p = A1111Parameters.parse(A1111Parameters.format(info));
        assertEquals("p, q", p.get("Prompt"));
        assertEquals("m, x", p.get("Model"));
        assertEquals("a: 0123456789ab", p.get("Lora hashes"));
        assertEquals("say \"hi\"\nthere", p.get("Note"));
    }

    @Test
    void textWithoutParametersIsAllPrompt() {
        Map<String, String> p = A1111Parameters.parse("just a prompt\nover two lines");
        assertEquals("just a prompt\nover two lines", p.get("Prompt"));
        assertEquals("", p.get("Negative prompt"));
        assertEquals(2, p.size());
    }
}
