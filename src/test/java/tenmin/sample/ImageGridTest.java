package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import tenmin.formats.RgbImage;
import tenmin.testing.LogLines;

class ImageGridTest {
    private static final int W = 40;
    private static final int H = 30;

    private static RgbImage random(int w, int h, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] rgb = new byte[w * h * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) r.nextInt(256);
        }
        return RgbImage.of(w, h, rgb);
    }

    private static List<List<RgbImage>> cells(int rows, int cols) {
        List<List<RgbImage>> out = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            List<RgbImage> row = new ArrayList<>();
            for (int c = 0; c < cols; c++) {
                row.add(random(W, H, 10L * r + c));
            }
            out.add(row);
        }
        return out;
    }

    private static void assertCellHolds(ImageGrid.Result g, int r, int c, RgbImage img) {
        for (int y = 0; y < img.height(); y++) {
            for (int x = 0; x < img.width(); x++) {
                assertEquals(img.rgb(x, y), g.image().rgb(g.columnX()[c] + x, g.rowY()[r] + y),
                        "cell " + r + "," + c + " pixel " + x + "," + y);
            }
        }
    }

    private static int inkPixels(RgbImage img, int x0, int y0, int x1, int y1, int background) {
        int n = 0;
        for (int y = y0; y < y1; y++) {
            for (int x = x0; x < x1; x++) {
                if (img.rgb(x, y) != background) {
                    n++;
                }
            }
        }
        return n;
    }

    @Test
    void unlabelledGridIsCellsAndGaps() {
        List<List<RgbImage>> cells = cells(2, 3);
        ImageGrid.Options opt = new ImageGrid.Options(5, 0xFFFFFF, 0, 0);
        ImageGrid.Result g = ImageGrid.compose(cells, List.of(), List.of(), opt);
        assertEquals(3 * W + 2 * 5, g.image().width());
        assertEquals(2 * H + 5, g.image().height());
        assertEquals(List.of(0, W + 5, 2 * (W + 5)), Arrays.stream(g.columnX()).boxed().toList());
        assertEquals(List.of(0, H + 5), Arrays.stream(g.rowY()).boxed().toList());
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 3; c++) {
                assertCellHolds(g, r, c, cells.get(r).get(c));
            }
        }
        // the gaps are background
        assertEquals(0, inkPixels(g.image(), W, 0, W + 5, g.image().height(), 0xFFFFFF));
    }

    @Test
    void labelsGoAboveAndLeftAndNeverCoverImages() {
        List<List<RgbImage>> cells = cells(2, 3);
        ImageGrid.Result g = ImageGrid.compose(cells, List.of("base", "full LoRA", "IN04 alone with a long label"),
                List.of("seed 1", "seed 2"), ImageGrid.Options.DEFAULT);
        RgbImage img = g.image();
        int gap = ImageGrid.Options.DEFAULT.gap();
        assertTrue(g.columnX()[0] > 0, "room for row labels");
        assertTrue(g.rowY()[0] > 0, "room for column labels");
        assertEquals(g.columnX()[2] + W, img.width());
        assertEquals(g.rowY()[1] + H, img.height());
        assertEquals(W + gap, g.columnX()[1] - g.columnX()[0]);
        assertEquals(H + gap, g.rowY()[1] - g.rowY()[0]);
        assertCellsAndLabels(g, cells);
    }

    /** Every cell holds its image, and there is text above each column and left of each row. */
    private static void assertCellsAndLabels(ImageGrid.Result g, List<List<RgbImage>> cells) {
        RgbImage img = g.image();
        for (int r = 0; r < cells.size(); r++) {
            for (int c = 0; c < cells.get(r).size(); c++) {
                assertCellHolds(g, r, c, cells.get(r).get(c));
                assertTrue(inkPixels(img, g.columnX()[c], 0, g.columnX()[c] + W, g.rowY()[0], 0xFFFFFF) > 0,
                        "label over column " + c);
            }
            assertTrue(inkPixels(img, 0, g.rowY()[r], g.columnX()[0], g.rowY()[r] + H, 0xFFFFFF) > 0,
                    "label left of row " + r);
        }
    }

    @Test
    void smallerImagesSitTopLeftAndMissingCellsAreBlank() {
        RgbImage big = random(W, H, 1);
        RgbImage small = random(10, 6, 2);
        List<RgbImage> row = new ArrayList<>();
        row.add(big);
        row.add(small);
        row.add(null);
        ImageGrid.Options opt = new ImageGrid.Options(2, 0x102030, 0xFFFFFF, 0);
        ImageGrid.Result g = ImageGrid.compose(List.of(row), List.of(), List.of(), opt);
        assertEquals(W, g.cellWidth());
        assertEquals(H, g.cellHeight());
        assertCellHolds(g, 0, 0, big);
        assertCellHolds(g, 0, 1, small);
        int x1 = g.columnX()[1];
        // the rest of the small image's cell and the whole missing cell are background
        assertEquals(0, inkPixels(g.image(), x1 + 10, 0, x1 + W, H, 0x102030));
        assertEquals(0, inkPixels(g.image(), x1, 6, x1 + W, H, 0x102030));
        int x2 = g.columnX()[2];
        assertEquals(0, inkPixels(g.image(), x2, 0, x2 + W, H, 0x102030));
    }

    @Test
    void rejectsInconsistentInput() {
        List<List<RgbImage>> ragged = List.of(List.of(random(2, 2, 1)), List.of(random(2, 2, 1), random(2, 2, 2)));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.compose(ragged, List.of(), List.of(), ImageGrid.Options.DEFAULT));
        List<List<RgbImage>> one = List.of(List.of(random(2, 2, 1)));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.compose(one, List.of("a", "b"), List.of(), ImageGrid.Options.DEFAULT));
        assertThrows(IllegalArgumentException.class, () -> ImageGrid.compose(List.of(), List.of(), List.of(), ImageGrid.Options.DEFAULT));
    }

    // ---- the bitmap font: servers without fonts ("Fontconfig head is null") ----------------------------

    private static final String NO_FONTS = "no usable system fonts (RuntimeException: Fontconfig head is null)";

    private static ImageGrid.Result bitmapGrid(List<List<RgbImage>> cells, List<String> columns, List<String> rows,
                                               ImageGrid.Options options, LogLines log) {
        return ImageGrid.compose(cells, columns, rows, options, log, NO_FONTS);
    }

    @Test
    void bitmapFontLabelsFollowTheLayoutRules() {
        // font size 18: scale 2, so a character is 12 pixels wide and a line 18 pixels high
        ImageGrid.Options opt = new ImageGrid.Options(8, 0xFFFFFF, 0x000000, 18);
        LogLines log = new LogLines();
        ImageGrid.Result g = bitmapGrid(cells(2, 3), List.of("a", "bb cc", "d"), List.of("seed 1", "seed 22"), opt, log);
        // "bb cc" (60 px) does not fit the 40-pixel column: two lines; band = gap + 2 lines + gap
        assertEquals(8 + 2 * 18 + 8, g.rowY()[0]);
        // row labels fit the label column (at least ten M's wide) on one line; the widest is 7 characters
        assertEquals(8 + 7 * 12 + 8, g.columnX()[0]);
        assertEquals(g.columnX()[2] + W, g.image().width());
        assertEquals(g.rowY()[1] + H, g.image().height());
        assertEquals(1, log.count("WARNING: ", "Fontconfig head is null"), log.lines().toString());
        assertEquals(1, log.count("WARNING: ", "built-in bitmap font"), log.lines().toString());
    }

    @Test
    void bitmapFontDrawsLabelsAndNeverCoversImages() {
        List<List<RgbImage>> cells = cells(2, 3);
        ImageGrid.Result g = bitmapGrid(cells, List.of("base", "full LoRA", "IN04 alone with a long label"),
                List.of("seed 1", "seed 2"), ImageGrid.Options.DEFAULT, new LogLines());
        assertCellsAndLabels(g, cells);
    }

    @Test
    void bitmapFontInkIsTheGlyphScaled() {
        // "H" has 7 + 1 + 1 + 1 + 7 ink pixels; at scale 3 (font size 27) each is a 3x3 square, in the text colour
        ImageGrid.Options opt = new ImageGrid.Options(4, 0xFFFFFF, 0x123456, 27);
        ImageGrid.Result g = bitmapGrid(cells(1, 1), List.of("H"), List.of(), opt, new LogLines());
        int band = g.rowY()[0];
        assertEquals(4 + 9 * 3 + 4, band);
        assertEquals(17 * 9, inkPixels(g.image(), 0, 0, W, band, 0xFFFFFF));
        int textColoured = 0;
        for (int y = 0; y < band; y++) {
            for (int x = 0; x < W; x++) {
                textColoured += g.image().rgb(x, y) == 0x123456 ? 1 : 0;
            }
        }
        assertEquals(17 * 9, textColoured, "no antialiasing: every ink pixel is the text colour");
    }

    @Test
    void bitmapFontWithoutLabelsDrawsNothingAndDoesNotWarn() {
        List<List<RgbImage>> cells = cells(2, 3);
        LogLines log = new LogLines();
        ImageGrid.Options opt = new ImageGrid.Options(5, 0xFFFFFF, 0, 0);
        ImageGrid.Result g = bitmapGrid(cells, List.of(), List.of(), opt, log);
        assertEquals(3 * W + 2 * 5, g.image().width());
        assertEquals(2 * H + 5, g.image().height());
        assertEquals(0, inkPixels(g.image(), W, 0, W + 5, g.image().height(), 0xFFFFFF));
        assertEquals(0, inkPixels(g.image(), 0, H, g.image().width(), H + 5, 0xFFFFFF));
        assertEquals(List.of(), log.lines(), "no text, no font, no warning");
        // empty label strings: a line's room, no ink
        ImageGrid.Result empty = bitmapGrid(cells, List.of("", "", ""), List.of(), opt, log);
        assertEquals(5 + 9 + 5, empty.rowY()[0]);
        assertEquals(0, inkPixels(empty.image(), 0, 0, empty.image().width(), empty.rowY()[0], 0xFFFFFF));
    }

    @Test
    void describesTheFontFailureByItsRootCause() {
        Throwable t = new ExceptionInInitializerError(
                new RuntimeException("Fontconfig head is null, check your fonts or fonts configuration"));
        assertEquals("RuntimeException: Fontconfig head is null, check your fonts or fonts configuration",
                ImageGrid.describe(t));
        assertEquals("NullPointerException", ImageGrid.describe(new NullPointerException()));
    }

    @Test
    void theSystemPropertyForcesTheBitmapFont() {
        ImageGrid.Options opt = new ImageGrid.Options(4, 0xFFFFFF, 0x123456, 27);
        LogLines log = new LogLines();
        ImageGrid.Result g;
        System.setProperty(ImageGrid.BITMAP_FONT_PROPERTY, "true");
        try {
            g = ImageGrid.compose(cells(1, 1), List.of("H"), List.of(), opt, log);
        } finally {
            System.clearProperty(ImageGrid.BITMAP_FONT_PROPERTY);
        }
        assertEquals(17 * 9, inkPixels(g.image(), 0, 0, W, g.rowY()[0], 0xFFFFFF), "the bitmap font's H at scale 3");
        assertEquals(List.of("WARNING: tenmin.bitmapFont is set; labels use tenmin's built-in bitmap font"), log.lines());
    }
}
