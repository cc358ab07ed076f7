package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.formats.RgbImage;

/** The small input and output rules of sampling: LoRA arguments, prompt checks, output numbering, cell shrinking. */
class SampleInputsTest {

    @Test
    void loraArgumentsSplitAtTheFirstNumericColon() {
        assertEquals(new LoraSpec(Path.of("x.safetensors"), 1.0, null), LoraSpec.parse("x.safetensors"));
        assertEquals(new LoraSpec(Path.of("x.safetensors"), 0.8, null), LoraSpec.parse("x.safetensors:0.8"));
        assertEquals(new LoraSpec(Path.of("C:\\loras\\x.safetensors"), -0.5, null), LoraSpec.parse("C:\\loras\\x.safetensors:-0.5"));
        assertEquals(new LoraSpec(Path.of("x.safetensors"), 1.0, "SDXL-LyC-OUTALL"), LoraSpec.parse("x.safetensors:1:SDXL-LyC-OUTALL"));
        assertEquals(new LoraSpec(Path.of("x.safetensors"), 0.7, "MY:1,0,0.5"), LoraSpec.parse("x.safetensors:0.7:MY:1,0,0.5"));
        assertEquals(new LoraSpec(Path.of("x.safetensors"), 1.0, "%default=0,out=1"), LoraSpec.parse("x.safetensors:1:%default=0,out=1"));
        assertEquals("x", LoraSpec.parse("dir/x.safetensors:2").name());
        assertThrows(InputException.class, () -> LoraSpec.parse("x.safetensors:inf"));
        assertThrows(InputException.class, () -> LoraSpec.parse("x.safetensors:1:"));
        assertThrows(InputException.class, () -> LoraSpec.parse(" "));
    }

    @Test
    void aFileWhoseNameHasAColonAndANumberIsAFile(@TempDir Path tmp) throws IOException {
        Path odd = Files.writeString(tmp.resolve("v:2"), "");
        LoraSpec s = LoraSpec.parse(odd.toString());
        assertEquals(odd, s.file());
        assertEquals(1.0, s.strength());
        assertNull(s.vector());
    }

    @Test
    void promptChecksNameTheUnsupportedSyntax() {
        PromptEncoder.Options o = PromptEncoder.Options.A1111;
        PromptEncoder.check("a (cat:1.2), [dog], \\[literal:0.5\\], (x), BREAK y", "--prompt", o);
        PromptEncoder.check("", "--prompt", o);
        String[][] bad = {{"<lora:style:1> a", "<lora:style:1>"}, {"<LyCO:x:0.5>", "<LyCO:x:0.5>"},
                {"<hypernet:h:1>", "<hypernet:h:1>"}, {"a [cat:dog:0.3]", "[cat:dog:0.3]"}, {"a [cat:10]", "[cat:10]"},
                {"a [cat|dog|cow]", "[cat|dog|cow]"}, {"(a:1.2.3)", "attention weight"}};
        for (String[] b : bad) {
            InputException e = assertThrows(InputException.class, () -> PromptEncoder.check(b[0], "p.txt prompt 2", o), b[0]);
            assertTrue(e.getMessage().startsWith("p.txt prompt 2: ") && e.getMessage().contains(b[1]), e.getMessage());
        }
    }

    @Test
    void outputNumbersContinueAfterTheLargestInTheFolder(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("new/out");
        ImageFiles files = ImageFiles.in(dir);
        assertEquals(dir.resolve("00000-42"), files.reserve("42"));
        assertEquals(dir.resolve("00001-atlas-my_lora-7"), files.reserve("atlas-my lora-7"));
        Files.writeString(dir.resolve("00009-1.png"), "");
        Files.writeString(dir.resolve("123456-x.csv"), "");
        Files.writeString(dir.resolve("notes-00500.txt"), "");
        assertEquals(dir.resolve("123457-3"), ImageFiles.in(dir).reserve("3"));
        Path file = Files.writeString(tmp.resolve("file"), "");
        assertThrows(InputException.class, () -> ImageFiles.in(file));
    }

    @Test
    void cellsShrinkByBoxAverages() {
        byte[] rgb = new byte[4 * 2 * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i * 10);
        }
        RgbImage img = RgbImage.of(4, 2, rgb);
        RgbImage half = ImageGrid.downscale(img, 2);
        assertEquals(2, half.width());
        assertEquals(1, half.height());
        // pixel (0,0) averages pixels (0,0), (1,0), (0,1), (1,1): red channel bytes 0, 30, 120, 150 -> 75
        byte[] expected = {75, 85, 95, (byte) 135, (byte) 145, (byte) 155};
        assertArrayEquals(expected, half.toBytes());
        assertEquals(img, BlockAtlas.shrink(img, 4));
        assertEquals(2, BlockAtlas.shrink(img, 3).width());
    }
}
