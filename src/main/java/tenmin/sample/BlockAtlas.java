package tenmin.sample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Scope;
import tenmin.engine.blas.OpenBlas;
import tenmin.formats.RgbImage;
import tenmin.lora.BlockLayout;
import tenmin.lora.DeltaMath;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;

/**
 * Which U-Net blocks of a LoRA carry its effect, from images: the same prompt and seed rendered without the
 * LoRA, with all of it, with each unit alone and (optionally) with each unit removed; a unit is BASE (text
 * encoders and U-Net modules outside the blocks, Inspire-Pack's BASE) or one block of chop's layout.
 *
 * <p>Distances are RMS differences of the 8-bit images scaled to [0, 1] (over every pixel and channel):
 * {@code d(a, b) = sqrt(mean((a − b)²))}. With B the image without the LoRA, F the full-LoRA image and
 * {@code D = d(F, B)}:
 * <ul>
 * <li>{@code move(u) = d(A_u, B) / D}: how far the unit alone moves the image, relative to the whole LoRA;
 * <li>{@code toward(u) = 1 − d(A_u, F) / D}: the share of the way from B to F the unit alone covers (1: it
 *     gives F's picture, 0: no closer than B, negative: further away);
 * <li>{@code without(u) = 1 − d(R_u, F) / D} (with removal renders R_u): what is left of the way without it.
 * </ul>
 * Proposal: units sorted by {@code toward} (then energy), the smallest prefix whose own render reaches
 * {@code toward ≥ threshold} is kept (each prefix is rendered and measured, so interactions between blocks
 * count; the full set always reaches 1). The chop vector keeps the proposal's blocks ({@code 1,} then 0/1 per
 * block in chop's order); the Inspire-Pack vector also has BASE first.
 *
 * <p>Energy is {@code tenmin inspect}'s: Σ ‖ΔW‖_F of a unit's modules ({@link DeltaMath#frobeniusNorm}).
 */
public final class BlockAtlas {
    private BlockAtlas() {
    }

    /**
     * What to render.
     *
     * @param settings  prompt, size, sampler, CFG
     * @param seed      the seed of every render
     * @param remove    also render each unit removed
     * @param threshold the {@code toward} the proposal must reach, in (0, 1]
     * @param batch     renders per U-Net batch (memory for speed)
     */
    public record Config(SdxlPipeline.Settings settings, long seed, boolean remove, double threshold, int batch) {
        public Config {
            if (!(threshold > 0 && threshold <= 1)) {
                throw new InputException("--threshold must be in (0, 1], got " + threshold);
            }
            if (batch < 1) {
                throw new InputException("--batch must be >= 1, got " + batch);
            }
        }
    }

    /**
     * One unit of the LoRA.
     *
     * @param name      {@code BASE} or chop's short name ({@code INP04}, {@code MID01}, {@code OUT08})
     * @param label     {@code BASE} or the block ({@code input_blocks.4})
     * @param chopIndex index in chop's layout, -1 for BASE
     * @param modules   modules in the unit
     * @param energy    Σ ‖ΔW‖_F (as inspect)
     * @param share     energy / total energy
     */
    public record Unit(String name, String label, int chopIndex, int modules, double energy, double share) {
    }

    /**
     * Measurements of one unit ({@link BlockAtlas} defines them); {@code without} is NaN without removal renders,
     * and all three are NaN when the LoRA does not change the image.
     */
    public record Row(Unit unit, double move, double toward, double without, boolean proposed) {
    }

    /**
     * Everything the atlas found.
     *
     * @param fullDistance   D = d(F, B)
     * @param rows           one per unit, BASE first, then chop's order
     * @param proposal       names of the proposed units
     * @param proposalToward {@code toward} of the proposal's own render
     * @param chopVector     {@code tenmin chop} / chop_blocks vector keeping the proposed blocks
     * @param blockVector    Inspire-Pack vector (BASE first) of the proposal
     * @param grid           the labelled image grid
     * @param renders        how many images were rendered
     */
    public record Result(double fullDistance, List<Row> rows, List<String> proposal, double proposalToward,
                         String chopVector, String blockVector, RgbImage grid, int renders) {
        public Result {
            rows = List.copyOf(rows);
            proposal = List.copyOf(proposal);
        }
    }

    /**
     * Runs the atlas with the pipeline's LoRA set, which must hold exactly one LoRA.
     *
     * @param cellSize largest side of a grid cell in pixels (images are shrunk by an integer factor to fit; 0 = as rendered)
     */
    public static Result run(SdxlPipeline pipeline, Config config, int cellSize, Scope scope, Reporter reporter) {
        LoraSet loras = pipeline.loras();
        if (loras.prepared().size() != 1) {
            throw new InputException("the atlas takes exactly one LoRA, got " + loras.prepared().size());
        }
        LoraSet.Prepared lora = loras.prepared().getFirst();
        List<Unit> units = units(lora);
        int[] unitOfModule = new int[loras.modules().size()];
        for (int i = 0; i < unitOfModule.length; i++) {
            unitOfModule[i] = unitIndex(units, loras.modules().get(i).block());
        }
        double[] full = loras.defaultMultipliers();
        Renderer r = new Renderer(pipeline, config, scope, reporter, full, unitOfModule);

        // base, full, each unit alone, each unit removed: one list, rendered in batches
        List<boolean[]> sets = new ArrayList<>();
        sets.add(new boolean[units.size()]);
        boolean[] all = new boolean[units.size()];
        Arrays.fill(all, true);
        sets.add(all);
        for (int u = 0; u < units.size(); u++) {
            sets.add(only(units.size(), u));
        }
        if (config.remove()) {
            for (int u = 0; u < units.size(); u++) {
                boolean[] s = all.clone();
                s[u] = false;
                sets.add(s);
            }
        }
        reporter.log(Reporter.Level.INFO, "atlas: " + units.size() + " units, " + sets.size() + " renders in batches of "
                + config.batch());
        List<RgbImage> images = r.render(sets);
        RgbImage base = images.get(0);
        RgbImage fullImage = images.get(1);
        double d = rms(fullImage, base);
        if (d == 0) {
            reporter.log(Reporter.Level.WARNING, "warning: the LoRA does not change this image (prompt, seed and size);"
                    + " every measurement is undefined");
        }
        double[] toward = new double[units.size()];
        double[] move = new double[units.size()];
        double[] without = new double[units.size()];
        Arrays.fill(without, Double.NaN);
        for (int u = 0; u < units.size(); u++) {
            RgbImage alone = images.get(2 + u);
            move[u] = rms(alone, base) / d;
            toward[u] = 1 - rms(alone, fullImage) / d;
            if (config.remove()) {
                without[u] = 1 - rms(images.get(2 + units.size() + u), fullImage) / d;
            }
        }

        // proposal: smallest prefix of the ranking whose own render reaches the threshold
        Integer[] order = new Integer[units.size()];
        for (int u = 0; u < order.length; u++) {
            order[u] = u;
        }
        Arrays.sort(order, Comparator.<Integer>comparingDouble(u -> Double.isNaN(toward[u]) ? 0 : -toward[u])
                .thenComparingDouble(u -> -units.get(u).energy()));
        int keep = units.size();
        double keptToward = d == 0 ? Double.NaN : 1.0;
        RgbImage proposalImage = fullImage;
        if (d > 0 && toward[order[0]] >= config.threshold()) {
            keep = 1;
            keptToward = toward[order[0]];
            proposalImage = images.get(2 + order[0]);
        } else if (d > 0) {
            for (int k = 2; k < units.size(); k += config.batch()) {
                List<boolean[]> prefixes = new ArrayList<>();
                for (int j = k; j < Math.min(units.size(), k + config.batch()); j++) {
                    prefixes.add(prefix(order, j, units.size()));
                }
                List<RgbImage> rendered = r.render(prefixes);
                int found = -1;
                for (int i = 0; i < rendered.size() && found < 0; i++) {
                    double t = 1 - rms(rendered.get(i), fullImage) / d;
                    if (t >= config.threshold()) {
                        found = i;
                        keep = k + i;
                        keptToward = t;
                        proposalImage = rendered.get(i);
                    }
                }
                if (found >= 0) {
                    break;
                }
            }
        }
        boolean[] proposed = prefix(order, keep, units.size());

        List<Row> rows = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (int u = 0; u < units.size(); u++) {
            rows.add(new Row(units.get(u), move[u], toward[u], without[u], proposed[u]));
            if (proposed[u]) {
                names.add(units.get(u).name());
            }
        }
        RgbImage grid = grid(units, rows, images, proposalImage, config.remove(), cellSize, reporter);
        return new Result(d, rows, names, keptToward, chopVector(lora.layout(), units, proposed),
                blockVector(lora.layout(), units, proposed), grid, r.renders);
    }

    /** BASE (when the LoRA has modules outside the blocks) then every block of chop's layout, with energies. */
    static List<Unit> units(LoraSet.Prepared lora) {
        BlockLayout layout = lora.layout();
        int blocks = layout.blocks().size();
        double[] energy = new double[blocks + 1]; // [0] = BASE
        int[] count = new int[blocks + 1];
        OpenBlas blas = OpenBlas.find().blas(); // null: the Java kernels
        try (LoraFile file = LoraFile.open(lora.spec().file())) {
            for (LoraModule m : file.modules()) {
                int slot = layout.indexOfModule(m.name()) + 1;
                double norm = DeltaMath.frobeniusNorm(blas, m.readUp(), m.readDown(), (int) m.outFeatures(), m.rank(),
                        m.columns(), m.scale());
                file.file().release(m.upKey());
                file.file().release(m.downKey());
                energy[slot] += norm;
                count[slot]++;
            }
        }
        double total = Arrays.stream(energy).sum();
        List<Unit> units = new ArrayList<>();
        if (count[0] > 0) {
            units.add(new Unit(LoraSet.BASE, LoraSet.BASE, -1, count[0], energy[0], total > 0 ? energy[0] / total : 0));
        }
        for (int i = 0; i < blocks; i++) {
            BlockLayout.Block b = layout.blocks().get(i);
            units.add(new Unit(b.shortName(), b.label(), i, count[i + 1], energy[i + 1],
                    total > 0 ? energy[i + 1] / total : 0));
        }
        return units;
    }

    private static int unitIndex(List<Unit> units, int block) {
        for (int u = 0; u < units.size(); u++) {
            if (units.get(u).chopIndex() == block) {
                return u;
            }
        }
        throw new IllegalStateException("no unit for block " + block);
    }

    private static boolean[] only(int n, int u) {
        boolean[] s = new boolean[n];
        s[u] = true;
        return s;
    }

    private static boolean[] prefix(Integer[] order, int k, int n) {
        boolean[] s = new boolean[n];
        for (int i = 0; i < k; i++) {
            s[order[i]] = true;
        }
        return s;
    }

    /** Renders sets of units (true = the unit's modules at their multipliers, false = off) in batches. */
    private static final class Renderer {
        final SdxlPipeline pipeline;
        final Config config;
        final Scope scope;
        final Reporter reporter;
        final double[] full;
        final int[] unitOfModule;
        int renders;

        Renderer(SdxlPipeline pipeline, Config config, Scope scope, Reporter reporter, double[] full, int[] unitOfModule) {
            this.pipeline = pipeline;
            this.config = config;
            this.scope = scope;
            this.reporter = reporter;
            this.full = full;
            this.unitOfModule = unitOfModule;
        }

        List<RgbImage> render(List<boolean[]> sets) {
            List<RgbImage> out = new ArrayList<>();
            for (int from = 0; from < sets.size(); from += config.batch()) {
                List<SdxlPipeline.Job> jobs = new ArrayList<>();
                for (boolean[] set : sets.subList(from, Math.min(sets.size(), from + config.batch()))) {
                    double[] m = new double[full.length];
                    for (int i = 0; i < m.length; i++) {
                        m[i] = set[unitOfModule[i]] ? full[i] : 0;
                    }
                    jobs.add(new SdxlPipeline.Job(config.seed(), m));
                }
                for (SdxlPipeline.Image image : pipeline.render(scope, config.settings(), jobs)) {
                    out.add(image.image());
                }
                renders += jobs.size();
            }
            return out;
        }
    }

    /** RMS difference of two images of equal size, channel values scaled to [0, 1]. */
    public static double rms(RgbImage a, RgbImage b) {
        if (a.width() != b.width() || a.height() != b.height()) {
            throw new IllegalArgumentException("images differ in size: " + a + " and " + b);
        }
        byte[] x = a.toBytes();
        byte[] y = b.toBytes();
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            double diff = ((x[i] & 0xFF) - (y[i] & 0xFF)) / 255.0;
            sum += diff * diff;
        }
        return Math.sqrt(sum / x.length);
    }

    /** chop's vector: {@code 1} then 0/1 per block of the layout. */
    private static String chopVector(BlockLayout layout, List<Unit> units, boolean[] proposed) {
        StringBuilder sb = new StringBuilder("1");
        for (int i = 0; i < layout.blocks().size(); i++) {
            sb.append(',').append(proposed[unitIndex(units, i)] ? 1 : 0);
        }
        return sb.toString();
    }

    /** Inspire-Pack's vector: BASE (1 when kept or when the LoRA has no BASE modules), then 0/1 per block. */
    private static String blockVector(BlockLayout layout, List<Unit> units, boolean[] proposed) {
        boolean hasBase = !units.isEmpty() && units.getFirst().chopIndex() == -1;
        StringBuilder sb = new StringBuilder(!hasBase || proposed[0] ? "1" : "0");
        for (int i = 0; i < layout.blocks().size(); i++) {
            sb.append(',').append(proposed[unitIndex(units, i)] ? 1 : 0);
        }
        return sb.toString();
    }

    /**
     * Columns "no LoRA", "full LoRA", "proposed", then one per unit (labelled with its energy share and
     * {@code toward}); row "alone" holds the unit-alone renders, row "without" (with removal) the removed ones.
     */
    private static RgbImage grid(List<Unit> units, List<Row> rows, List<RgbImage> images, RgbImage proposal,
                                 boolean remove, int cellSize, Reporter reporter) {
        List<String> columns = new ArrayList<>(List.of("no LoRA", "full LoRA", "proposed"));
        List<RgbImage> alone = new ArrayList<>(List.of(shrink(images.get(0), cellSize), shrink(images.get(1), cellSize),
                shrink(proposal, cellSize)));
        List<RgbImage> removed = new ArrayList<>(Arrays.asList(null, null, null));
        for (int u = 0; u < units.size(); u++) {
            Row row = rows.get(u);
            columns.add(units.get(u).name() + "\nE " + percent(units.get(u).share()) + "\n→ " + percent(row.toward()));
            alone.add(shrink(images.get(2 + u), cellSize));
            removed.add(remove ? shrink(images.get(2 + units.size() + u), cellSize) : null);
        }
        List<List<RgbImage>> cells = new ArrayList<>();
        cells.add(alone);
        List<String> rowLabels = new ArrayList<>(List.of("alone"));
        if (remove) {
            cells.add(removed);
            rowLabels.add("without");
        }
        return ImageGrid.compose(cells, columns, rowLabels, ImageGrid.Options.DEFAULT, reporter).image();
    }

    static String percent(double v) {
        return Double.isNaN(v) ? "-" : Math.round(v * 100) + "%";
    }

    /** The image shrunk by the smallest integer factor that fits {@code cellSize} (box average); as is when it fits. */
    static RgbImage shrink(RgbImage image, int cellSize) {
        int side = Math.max(image.width(), image.height());
        if (cellSize <= 0 || side <= cellSize) {
            return image;
        }
        return ImageGrid.downscale(image, (side + cellSize - 1) / cellSize);
    }
}
