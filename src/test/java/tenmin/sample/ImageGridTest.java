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
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 3; c++) {
                assertCellHolds(g, r, c, cells.get(r).get(c));
                // some text above each column and left of each row
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
}
