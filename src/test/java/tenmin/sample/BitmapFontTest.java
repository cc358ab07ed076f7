package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** The built-in label font: its data (a typo makes two glyphs alike or one blank), widths and drawing. */
class BitmapFontTest {
    @Test
    void everyGlyphIsDistinctAndOnlySpaceIsBlank() {
        Map<Long, Integer> seen = new HashMap<>();
        int[] chars = BitmapFont.characters();
        assertEquals(126 - 32 + 1 + 1, chars.length, "printable ASCII and the arrow");
        for (int c : chars) {
            long bits = BitmapFont.glyphBits(c);
            assertEquals(0, bits >>> (BitmapFont.GLYPH_WIDTH * BitmapFont.GLYPH_HEIGHT), "35 bits");
            if (c == ' ') {
                assertEquals(0, bits, "space is blank");
                continue;
            }
            assertNotEquals(0, bits, "'" + Character.toString(c) + "' is blank");
            Integer other = seen.put(bits, c);
            assertNull(other, () -> "'" + Character.toString(c) + "' and '" + Character.toString(other)
                    + "' share a bitmap");
        }
    }

    @Test
    void charactersOutsideTheFontAreQuestionMarks() {
        long question = BitmapFont.glyphBits('?');
        assertEquals(question, BitmapFont.glyphBits('é'));
        assertEquals(question, BitmapFont.glyphBits(0x1F600)); // an emoji: one code point, one glyph
        assertEquals(question, BitmapFont.glyphBits('\t'));
        assertNotEquals(question, BitmapFont.glyphBits('→'));
    }

    @Test
    void widthIsCharactersTimesAdvanceTimesScale() {
        for (int scale = 1; scale <= 4; scale++) {
            BitmapFont f = new BitmapFont(scale);
            assertEquals(0, f.width(""));
            assertEquals(11 * 6 * scale, f.width("seed 1 → 2!"));
            assertEquals(2 * 6 * scale, f.width("a\uD83D\uDE00"), "a surrogate pair is one character");
            assertEquals(9 * scale, f.lineHeight());
        }
        assertThrows(IllegalArgumentException.class, () -> new BitmapFont(0));
    }

    @Test
    void scaleFollowsTheFontSize() {
        assertEquals(1, BitmapFont.forSize(0).scale());
        assertEquals(1, BitmapFont.forSize(12).scale());
        assertEquals(2, BitmapFont.forSize(18).scale());
        assertEquals(6, BitmapFont.forSize(51.2f).scale()); // a 1024-pixel cell's automatic size
    }

    @Test
    void drawsTheGlyphPixelForPixel() {
        int scale = 2;
        BitmapFont f = new BitmapFont(scale);
        BufferedImage img = new BufferedImage(f.width("A?"), f.lineHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.WHITE);
        f.draw(g, "Aé", 0, 0);
        g.dispose();
        int[] chars = {'A', '?'};
        for (int i = 0; i < chars.length; i++) {
            long bits = BitmapFont.glyphBits(chars[i]);
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < 6 * scale; x++) {
                    int col = x / scale;
                    int row = y / scale - 1; // one blank row above the glyph
                    boolean ink = col < 5 && row >= 0 && row < 7 && (bits >> (7 * col + row) & 1) != 0;
                    assertEquals(ink ? 0xFFFFFF : 0, img.getRGB(i * 6 * scale + x, y) & 0xFFFFFF,
                            "char " + i + " pixel " + x + "," + y);
                }
            }
        }
    }
}
