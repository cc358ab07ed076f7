package tenmin.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

class ShellWordsTest {
    @Test
    void quotesOnlyWhatTheShellWouldSplitOrExpand() {
        assertEquals("chop out/last.safetensors 1,0,1 --lora=a.safetensors:0.5",
                ShellWords.join(List.of("chop", "out/last.safetensors", "1,0,1", "--lora=a.safetensors:0.5")));
        assertEquals("-p 'ohwx shape, red circle' -o 'my dir/$HOME' '' 'it'\\''s' '*.png'",
                ShellWords.join(List.of("-p", "ohwx shape, red circle", "-o", "my dir/$HOME", "", "it's", "*.png")));
    }

    @Test
    void quotedWordsSplitBackAsTheyWere() {
        List<String> words = List.of("sample", "-p", "a 'quoted' (word:1.2), [x]", "--lora", "d i r/last.safetensors:0.5",
                "-o", "tab\there");
        assertEquals(words, tenmin.testing.Cli.shellSplit(ShellWords.join(words)));
    }
}
