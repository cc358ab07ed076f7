package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.testing.LogLines;

class PromptFileTest {
    @TempDir
    Path dir;

    @Test
    void parsesTheLineFormatWithDefaults() {
        String text = """
                # comment line
                1girl, solo --w 1024 --h 768 --d 42 --s 28 --l 6.5 --n lowres, bad hands

                a cat
                a dog --W 1000 --H 50 --S 5000 --ss k_euler_a --cn ignored.png
                w 640 wolf
                """;
        LogLines log = new LogLines();
        List<PromptFile.SamplePrompt> p = PromptFile.parseText(text, "p.txt", "euler_a", log);
        List<String> warnings = log.lines();
        assertEquals(4, p.size());
        PromptFile.SamplePrompt a = p.get(0);
        assertEquals(new PromptFile.SamplePrompt(0, "1girl, solo", "lowres, bad hands", 1024, 768, 42L, 28, 6.5,
                "euler_a"), a);
        PromptFile.SamplePrompt b = p.get(1);
        assertEquals(new PromptFile.SamplePrompt(1, "a cat", "", 512, 512, null, 30, 7.5, "euler_a"), b);
        PromptFile.SamplePrompt c = p.get(2);
        assertEquals(1000, c.width());          // already a multiple of 8
        assertEquals(64, c.height());           // max(64, 50 - 50 % 8)
        assertEquals(1000, c.steps());          // clamped
        assertEquals("k_euler_a", c.sampler());
        assertNull(c.seed());
        assertEquals(1, warnings.size());       // --cn
        // part 0 is matched too (the reference's quirk): "w 640 wolf" sets the width
        assertEquals(640, p.get(3).width());
        assertEquals("w 640 wolf", p.get(3).prompt());
    }

    @Test
    void onlyLinesWhoseFirstCharacterIsAHashAreComments() {
        // kohya: [line.strip() for line in lines if len(line.strip()) > 0 and line[0] != "#"]
        List<PromptFile.SamplePrompt> p = PromptFile.parseText("#skipped\n  # indented --d 5\r\n\t\nlast\n", "p.txt",
                "euler_a", Reporter.SILENT);
        assertEquals(2, p.size());
        assertEquals("# indented", p.get(0).prompt());
        assertEquals(5L, p.get(0).seed());
        assertEquals(new PromptFile.SamplePrompt(1, "last", "", 512, 512, null, 30, 7.5, "euler_a"), p.get(1));
    }

    @Test
    void badValuesAreReportedAndIgnored() {
        LogLines log = new LogLines();
        List<PromptFile.SamplePrompt> p = PromptFile.parseText("x --l 7.5.5 --w 99999999999", "f.txt", "euler_a", log);
        List<String> warnings = log.lines();
        assertEquals(7.5, p.get(0).scale());
        assertEquals(512, p.get(0).width());
        assertEquals(2, warnings.size(), warnings.toString());
        assertEquals(true, warnings.get(0).contains("f.txt:1"));
    }

    @Test
    void readsTomlAndJsonPromptFiles() throws IOException {
        Path toml = Files.writeString(dir.resolve("p.toml"), """
                [prompt]
                width = 1024
                height = 1024
                scale = 5.0
                [[prompt.subset]]
                prompt = "a cat"
                seed = 7
                [[prompt.subset]]
                prompt = "a dog"
                width = 832
                negative_prompt = "blurry"
                """);
        List<PromptFile.SamplePrompt> t = PromptFile.read(toml, "euler_a", Reporter.SILENT);
        assertEquals(new PromptFile.SamplePrompt(0, "a cat", "", 1024, 1024, 7L, 30, 5.0, "euler_a"), t.get(0));
        assertEquals(new PromptFile.SamplePrompt(1, "a dog", "blurry", 832, 1024, null, 30, 5.0, "euler_a"), t.get(1));
        Path json = Files.writeString(dir.resolve("p.json"), "[{\"prompt\": \"x\", \"sample_steps\": 20, \"seed\": 3}]");
        assertEquals(new PromptFile.SamplePrompt(0, "x", "", 512, 512, 3L, 20, 7.5, "euler_a"),
                PromptFile.read(json, "euler_a", Reporter.SILENT).get(0));
        Path bad = Files.writeString(dir.resolve("b.json"), "{\"prompt\": 1}");
        assertThrows(InputException.class, () -> PromptFile.read(bad, "euler_a", Reporter.SILENT));
        Path txt = Files.writeString(dir.resolve("p.txt"), "hello --d 5\r\n");
        assertEquals(5L, PromptFile.read(txt, "euler_a", Reporter.SILENT).get(0).seed());
    }

}
