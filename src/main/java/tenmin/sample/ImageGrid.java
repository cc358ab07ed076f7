package tenmin.sample;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;

import tenmin.core.Reporter;
import tenmin.formats.RgbImage;

/**
 * Lays images out in a labelled grid (the block atlas, XYZ-plot style comparisons): a band of column labels
 * on top, a column of row labels on the left, cells of equal size separated by a gap. A cell is as large as
 * the largest image; each image sits at its cell's top-left corner, pixel for pixel (no scaling). Labels are
 * wrapped at spaces to fit their cell width (column labels) or the label column (row labels). Missing
 * images ({@code null}) leave the cell blank.
 *
 * <p>Labels use the system's sans-serif font. Where the JDK cannot measure or draw with it (a headless server
 * without fontconfig or fonts: {@code Fontconfig head is null}, an {@code InternalError} or an exception inside
 * {@code sun.font}), they use tenmin's {@link BitmapFont} instead, with the same layout, and the reporter gets a
 * warning. {@code -Dtenmin.bitmapFont=true} forces the bitmap font.
 */
public final class ImageGrid {
    /** The system property that forces the bitmap font ({@code true}). */
    public static final String BITMAP_FONT_PROPERTY = "tenmin.bitmapFont";

    static {
        // servers have no display: AWT must not look for one (set before the first AWT use here)
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private ImageGrid() {
    }

    /**
     * Appearance.
     *
     * @param gap pixels between cells and around the grid's labels
     * @param background 0xRRGGBB behind everything
     * @param textColor 0xRRGGBB of the labels
     * @param fontSize label font size in pixels, 0 = from the cell size
     */
    public record Options(int gap, int background, int textColor, float fontSize) {
        /** White background, black text, 8-pixel gaps, automatic font size. */
        public static final Options DEFAULT = new Options(8, 0xFFFFFF, 0x000000, 0);

        public Options {
            if (gap < 0 || fontSize < 0) {
                throw new IllegalArgumentException("gap and font size must be >= 0");
            }
        }
    }

    /**
     * The composed grid and where its cells are.
     *
     * @param image the whole grid
     * @param columnX (cols) x of each column's left edge
     * @param rowY (rows) y of each row's top edge
     */
    public record Result(RgbImage image, int[] columnX, int[] rowY, int cellWidth, int cellHeight) {
        public Result {
            columnX = columnX.clone();
            rowY = rowY.clone();
        }

        @Override
        public int[] columnX() {
            return columnX.clone();
        }

        @Override
        public int[] rowY() {
            return rowY.clone();
        }
    }

    /**
     * Composes a grid; a fallback to the bitmap font goes unreported.
     *
     * @see #compose(List, List, List, Options, Reporter)
     */
    public static Result compose(List<List<RgbImage>> cells, List<String> columnLabels, List<String> rowLabels,
                                 Options options) {
        return compose(cells, columnLabels, rowLabels, options, Reporter.SILENT);
    }

    /**
     * Composes a grid.
     *
     * @param cells rows of images (all rows equally long; null = blank cell)
     * @param columnLabels one per column, or an empty list for none
     * @param rowLabels one per row, or an empty list for none
     * @param reporter gets a warning when labels fall back to the bitmap font
     */
    public static Result compose(List<List<RgbImage>> cells, List<String> columnLabels, List<String> rowLabels,
                                 Options options, Reporter reporter) {
        String fontProblem = Boolean.getBoolean(BITMAP_FONT_PROPERTY) ? BITMAP_FONT_PROPERTY + " is set"
                : SystemFonts.PROBLEM;
        return compose(cells, columnLabels, rowLabels, options, reporter, fontProblem);
    }

    /**
     * {@link #compose(List, List, List, Options, Reporter)} with the font chosen by the caller.
     *
     * @param fontProblem why the labels cannot use the system's fonts (then they use the bitmap font), or null
     */
    static Result compose(List<List<RgbImage>> cells, List<String> columnLabels, List<String> rowLabels,
                          Options options, Reporter reporter, String fontProblem) {
        int rows = cells.size();
        if (rows == 0 || cells.getFirst().isEmpty()) {
            throw new IllegalArgumentException("a grid needs at least one row and one column");
        }
        int cols = cells.getFirst().size();
        int cellW = 1;
        int cellH = 1;
        for (List<RgbImage> row : cells) {
            if (row.size() != cols) {
                throw new IllegalArgumentException("grid rows have different lengths: " + cols + " and " + row.size());
            }
            for (RgbImage img : row) {
                if (img != null) {
                    cellW = Math.max(cellW, img.width());
                    cellH = Math.max(cellH, img.height());
                }
            }
        }
        if (!columnLabels.isEmpty() && columnLabels.size() != cols) {
            throw new IllegalArgumentException(cols + " columns but " + columnLabels.size() + " column labels");
        }
        if (!rowLabels.isEmpty() && rowLabels.size() != rows) {
            throw new IllegalArgumentException(rows + " rows but " + rowLabels.size() + " row labels");
        }
        int gap = options.gap();
        float size = options.fontSize() > 0 ? options.fontSize() : Math.max(12f, Math.min(cellW, cellH) / 20f);
        LabelFont font = fontProblem == null ? AwtFont.of(size) : BitmapFont.forSize(size);
        if (fontProblem != null && !(columnLabels.isEmpty() && rowLabels.isEmpty())) {
            reporter.log(Reporter.Level.WARNING, "WARNING: " + fontProblem + "; labels use tenmin's built-in bitmap font");
        }

        // label band height and label column width
        int lineH = font.lineHeight();
        List<List<String>> colLines = new ArrayList<>();
        int bandLines = 0;
        for (String label : columnLabels) {
            List<String> lines = wrap(label, font, cellW);
            colLines.add(lines);
            bandLines = Math.max(bandLines, lines.size());
        }
        int rowLabelMax = Math.max(cellW / 2, font.width("MMMMMMMMMM"));
        List<List<String>> rowLines = new ArrayList<>();
        int labelColW = 0;
        for (String label : rowLabels) {
            List<String> lines = wrap(label, font, rowLabelMax);
            rowLines.add(lines);
            for (String l : lines) {
                labelColW = Math.max(labelColW, font.width(l));
            }
        }
        // labels get the gap on both sides: from the edge of the picture and from the cells
        int top = columnLabels.isEmpty() ? 0 : gap + bandLines * lineH + gap;
        int left = rowLabels.isEmpty() ? 0 : gap + labelColW + gap;

        int[] colX = new int[cols];
        int[] rowY = new int[rows];
        for (int c = 0; c < cols; c++) {
            colX[c] = left + c * (cellW + gap);
        }
        for (int r = 0; r < rows; r++) {
            rowY[r] = top + r * (cellH + gap);
        }
        int width = left + cols * cellW + (cols - 1) * gap;
        int height = top + rows * cellH + (rows - 1) * gap;

        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(new Color(options.background()));
            g.fillRect(0, 0, width, height);
            g.setColor(new Color(options.textColor()));
            for (int c = 0; c < colLines.size(); c++) {
                List<String> lines = colLines.get(c);
                for (int i = 0; i < lines.size(); i++) {
                    int w = font.width(lines.get(i));
                    // centred over the column, bottom-aligned in the band
                    int y = top - gap - (lines.size() - i) * lineH;
                    font.draw(g, lines.get(i), colX[c] + Math.max(0, (cellW - w) / 2), y);
                }
            }
            for (int r = 0; r < rowLines.size(); r++) {
                List<String> lines = rowLines.get(r);
                int blockH = lines.size() * lineH;
                int y0 = rowY[r] + Math.max(0, (cellH - blockH) / 2);
                for (int i = 0; i < lines.size(); i++) {
                    int w = font.width(lines.get(i));
                    font.draw(g, lines.get(i), gap + labelColW - w, y0 + i * lineH);
                }
            }
        } finally {
            g.dispose();
        }
        // images last, pixel for pixel, so antialiased text can never touch them
        int[] rowPixels = new int[cellW];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                RgbImage img = cells.get(r).get(c);
                if (img == null) {
                    continue;
                }
                for (int y = 0; y < img.height(); y++) {
                    for (int x = 0; x < img.width(); x++) {
                        rowPixels[x] = img.rgb(x, y);
                    }
                    out.setRGB(colX[c], rowY[r] + y, img.width(), 1, rowPixels, 0, img.width());
                }
            }
        }
        return new Result(RgbImage.from(out), colX, rowY, cellW, cellH);
    }

    /**
     * {@code image} shrunk by an integer {@code factor}: each output pixel is the rounded mean of a
     * {@code factor × factor} box (a ragged right or bottom edge is dropped). Deterministic.
     */
    public static RgbImage downscale(RgbImage image, int factor) {
        if (factor < 1) {
            throw new IllegalArgumentException("downscale factor must be >= 1, got " + factor);
        }
        if (factor == 1) {
            return image;
        }
        int w = Math.max(1, image.width() / factor);
        int h = Math.max(1, image.height() / factor);
        int fx = Math.min(factor, image.width());
        int fy = Math.min(factor, image.height());
        byte[] src = image.toBytes();
        byte[] out = new byte[w * h * 3];
        int area = fx * fy;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int c = 0; c < 3; c++) {
                    int sum = 0;
                    for (int dy = 0; dy < fy; dy++) {
                        int row = (y * factor + dy) * image.width();
                        for (int dx = 0; dx < fx; dx++) {
                            sum += src[3 * (row + x * factor + dx) + c] & 0xFF;
                        }
                    }
                    out[3 * (y * w + x) + c] = (byte) ((sum + area / 2) / area);
                }
            }
        }
        return RgbImage.of(w, h, out);
    }

    /** Greedy word wrap at spaces; a word longer than the width stays on its own line. */
    static List<String> wrap(String text, LabelFont font, int maxWidth) {
        List<String> lines = new ArrayList<>();
        for (String paragraph : text.split("\n", -1)) {
            StringBuilder line = new StringBuilder();
            for (String word : paragraph.split(" ")) {
                if (word.isEmpty()) {
                    continue;
                }
                String candidate = line.isEmpty() ? word : line + " " + word;
                if (font.width(candidate) <= maxWidth || line.isEmpty()) {
                    line.setLength(0);
                    line.append(candidate);
                } else {
                    lines.add(line.toString());
                    line.setLength(0);
                    line.append(word);
                }
            }
            lines.add(line.toString());
        }
        return lines;
    }

    /** How labels are measured and drawn: all the layout code knows of a font. */
    interface LabelFont {
        /** Pixels from the start of {@code text} to where the next character would go. */
        int width(String text);

        /** Pixels from one line's top to the next line's. */
        int lineHeight();

        /** Draws one line of text in {@code g}'s current colour, the line's box starting at ({@code x}, {@code top}). */
        void draw(Graphics2D g, String text, int x, int top);
    }

    /** The system's sans-serif font through AWT, antialiased. */
    private record AwtFont(Font font, FontMetrics metrics) implements LabelFont {
        static AwtFont of(float size) {
            Font font = new Font(Font.SANS_SERIF, Font.PLAIN, Math.round(size));
            BufferedImage scratch = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = scratch.createGraphics();
            try {
                g.setFont(font);
                return new AwtFont(font, g.getFontMetrics());
            } finally {
                g.dispose();
            }
        }

        @Override
        public int width(String text) {
            return metrics.stringWidth(text);
        }

        @Override
        public int lineHeight() {
            return metrics.getHeight();
        }

        @Override
        public void draw(Graphics2D g, String text, int x, int top) {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(font);
            g.drawString(text, x, top + metrics.getAscent());
        }
    }

    /**
     * Whether the system's fonts work, found once per JVM on first use (fonts do not come and go while it runs):
     * by measuring and drawing a string, where a server without fonts fails.
     */
    private static final class SystemFonts {
        /** Why AWT cannot draw labels, or null when it can. */
        static final String PROBLEM = probe();

        private static String probe() {
            try {
                AwtFont font = AwtFont.of(12);
                BufferedImage scratch = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
                Graphics2D g = scratch.createGraphics();
                try {
                    font.draw(g, "Ag?", 0, 0);
                } finally {
                    g.dispose();
                }
                font.width("Ag?");
                return null;
            } catch (Throwable t) { // RuntimeException, InternalError, UnsatisfiedLinkError, NPE in sun.font: all mean "no fonts"
                return "no usable system fonts (" + describe(t) + ")";
            }
        }
    }

    /** {@code Class: message} of the innermost cause (the real reason behind initializer errors). */
    static String describe(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        String message = root.getMessage();
        return root.getClass().getSimpleName() + (message == null || message.isBlank() ? "" : ": " + message);
    }
}
