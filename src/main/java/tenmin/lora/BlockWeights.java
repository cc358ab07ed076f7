package tenmin.lora;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import tenmin.core.InputException;
import tenmin.core.PyFormat;

/**
 * A block-weight vector resolved against the modules of one LoRA: one ratio per module.
 *
 * <p>Two vector families (postprocess-spec §4, §5):
 * <ul>
 * <li><b>Inspire-Pack</b> ("LoRA Loader (Block Weight)"): entry 0 is BASE (text encoders and non-block UNet
 *     modules), then one entry per UNet block <i>present in the LoRA</i>, in the order input blocks, middle
 *     blocks, output blocks (21 entries for a full LoCon, 12 for an attention-only LoRA). Extra entries are
 *     ignored; when entries run out the last ratio carries over. Values: numbers ({@code -?\d+(\.\d+)?}),
 *     {@code A}, {@code a}=A/2, {@code B}, {@code b}=B/2, {@code R}/{@code r} = uniform(0, 3) and
 *     {@code U}/{@code u} = uniform(-1.5, 1.5) rounded to 2 decimals, drawn from numpy's generator seeded
 *     with {@code seed % 2^31} in block order, BASE last. An entry {@code "1 0.5"} gives successive modules
 *     of the block successive values (the last one repeats, leftovers continue into following blocks when
 *     the vector has run out). A preset name ({@link BlockPresets}), {@code NAME:vector}, and the
 *     {@code %} shorthand ({@code %default=0,out=1,in2-4=0.5,base=1}) are accepted. {@code inverse} uses
 *     {@code 1 - ratio}.
 * <li><b>A1111 lora-block-weight</b> (hako-mikan, kohya {@code --lbws}), fixed slots by length: 12 =
 *     {@code BASE,IN04,IN05,IN07,IN08,MID,OUT00..OUT05}; 20 = {@code BASE,IN00..IN08,MID,OUT00..OUT08}.
 *     Slots a layout does not list weigh 0. Values: numbers, {@code R} = random in [0,1) and {@code U} =
 *     uniform(-0.5, 1.5), 3 decimals. Text encoders take BASE; {@code time_embed}/{@code label_emb} take
 *     IN00 and {@code out} OUT09 (as kohya's {@code --lbws} indexes them).
 * </ul>
 * One deliberate difference from Inspire-Pack: a change of section always starts a new entry, even when
 * the last input block and the first middle block have the same number (Inspire-Pack then reuses the
 * entry, a bug that only partial LoRAs hit; {@link Options#compat()} reproduces it).
 */
public final class BlockWeights {

    /** Which vector family; {@link #AUTO} decides from the vector and the LoRA ({@link #resolve}). */
    public enum Format { AUTO, INSPIRE, LBW }

    /**
     * Resolution options.
     *
     * @param format  vector family
     * @param inverse use {@code 1 - ratio} everywhere
     * @param seed    seed of the R/U draws (numpy's global generator, {@code seed % 2^31})
     * @param a       the value of {@code A} (Inspire default 4.0)
     * @param b       the value of {@code B} (Inspire default 1.0)
     * @param compat  reproduce Inspire-Pack's edge bug: a new entry is taken only when the block number
     *                changes, so a section change between blocks of the same number reuses the entry
     */
    public record Options(Format format, boolean inverse, long seed, double a, double b, boolean compat) {
        /** Options without compat. */
        public Options(Format format, boolean inverse, long seed, double a, double b) {
            this(format, inverse, seed, a, b, false);
        }

        /** Inspire-Pack's node defaults: auto format, no inverse, seed 0, A = 4, B = 1. */
        public static Options defaults() {
            return new Options(Format.AUTO, false, 0, 4.0, 1.0);
        }
    }

    /** One vector entry as applied: its label, the ratio its first module got, the modules it covers. */
    public record Entry(String label, double ratio, int modules) {
    }

    private static final List<String> LBW12 = List.of("BASE", "IN04", "IN05", "IN07", "IN08", "MID",
            "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05");
    private static final List<String> LBW20 = List.of("BASE", "IN00", "IN01", "IN02", "IN03", "IN04", "IN05", "IN06",
            "IN07", "IN08", "MID", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08");
    private static final Pattern BLOCK = Pattern.compile("^lora_unet_(input_blocks|middle_block|output_blocks)_(\\d+)_(.*)$");
    private static final Pattern INSPIRE_NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?");
    private static final List<String> SECTIONS = List.of("input_blocks", "middle_block", "output_blocks");

    private final String vector;
    private final Format format;
    private final Map<String, Double> ratios;
    private final String populated;
    private final List<Entry> entries;
    private final List<String> warnings;

    private BlockWeights(String vector, Format format, Map<String, Double> ratios, String populated,
                         List<Entry> entries, List<String> warnings) {
        this.vector = vector;
        this.format = format;
        this.ratios = Collections.unmodifiableMap(ratios);
        this.populated = populated;
        this.entries = List.copyOf(entries);
        this.warnings = List.copyOf(warnings);
    }

    /** The vector as given. */
    public String vector() {
        return vector;
    }

    /** The family actually used ({@link Format#INSPIRE} or {@link Format#LBW}). */
    public Format format() {
        return format;
    }

    /** The ratio of {@code module} (1 for a module this resolution did not see). */
    public double ratio(String module) {
        return ratios.getOrDefault(module, 1.0);
    }

    /** Ratio per module name, in application order (blocks first, then BASE). */
    public Map<String, Double> ratios() {
        return ratios;
    }

    /**
     * The vector as applied, like Inspire-Pack's {@code populated_vector}: BASE first, then one value per
     * consumed entry (after R/U draws and inverse; 1 and 0 printed as {@code 1} and {@code 0}); for the
     * fixed formats, one value per slot.
     */
    public String populated() {
        return populated;
    }

    /** The applied entries, BASE first, for reports. */
    public List<Entry> entries() {
        return entries;
    }

    /** Notes for the user (modules treated as BASE, ignored entries). */
    public List<String> warnings() {
        return warnings;
    }

    /** The UNet section index (0 input, 1 middle, 2 output) and block number of a module, or null. */
    private record Place(int section, int number, String rest) {
        String label() {
            return SECTIONS.get(section) + "." + number;
        }
    }

    private static Place placeOf(String module) {
        Matcher m = BLOCK.matcher(module);
        if (!m.matches() || m.group(2).length() > 4) {
            return null;
        }
        return new Place(SECTIONS.indexOf(m.group(1)), Integer.parseInt(m.group(2)), m.group(3));
    }

    /**
     * Resolves {@code vector} for a LoRA with modules {@code moduleNames}. With {@link Format#AUTO}: the
     * {@code %} shorthand and preset names are Inspire vectors; otherwise a vector with exactly 1 + (blocks
     * present) entries is an Inspire vector, one of 12 or 20 plain entries is a fixed-slot vector, anything
     * else an Inspire vector. Throws {@link InputException} for malformed vectors.
     */
    public static BlockWeights resolve(String vector, Collection<String> moduleNames, Options options) {
        if (vector == null || vector.isBlank()) {
            throw new InputException("block vector is empty");
        }
        List<String> blockModules = new ArrayList<>();
        List<String> others = new ArrayList<>();
        for (String m : moduleNames) {
            (placeOf(m) != null ? blockModules : others).add(m);
        }
        blockModules.sort(ARCHITECTURE_ORDER);
        Collections.sort(others);
        Format format = options.format();
        if (format == Format.AUTO) {
            format = chooseFormat(vector.strip(), countBlocks(blockModules));
        }
        return format == Format.LBW ? resolveFixed(vector, blockModules, others, options)
                : resolveInspire(vector, blockModules, others, options);
    }

    private static int countBlocks(List<String> sortedBlockModules) {
        int n = 0;
        Place last = null;
        for (String m : sortedBlockModules) {
            Place p = placeOf(m);
            if (last == null || p.section() != last.section() || p.number() != last.number()) {
                n++;
            }
            last = p;
        }
        return n;
    }

    private static String body(String vector) {
        String[] parts = vector.split(":", -1);
        return parts.length > 1 ? parts[1] : parts[0];
    }

    private static Format chooseFormat(String vector, int blocks) {
        if (vector.startsWith("%")) {
            return Format.INSPIRE;
        }
        String[] items = body(vector).split(",", -1);
        if (inspireProblem(items, blocks) != null && BlockPresets.get(items[0].strip()) != null) {
            return Format.INSPIRE;
        }
        if (items.length == blocks + 1) {
            return Format.INSPIRE;
        }
        if (items.length == 12 || items.length == 20) {
            for (String it : items) {
                String s = it.strip();
                if (PythonFloat.parseFinite(s) == null && !s.equals("R") && !s.equals("U")) {
                    return Format.INSPIRE;
                }
            }
            return Format.LBW;
        }
        return Format.INSPIRE;
    }

    // ---------------------------------------------------------------- Inspire-Pack

    private static boolean inspireToken(String t) {
        return t.length() == 1 && "RrUuAaBb".contains(t) || INSPIRE_NUMBER.matcher(t).matches();
    }

    /** Null when Inspire-Pack's validation accepts the entries, else what is wrong. */
    private static String inspireProblem(String[] items, int blocks) {
        if (items.length < 12 && items.length != blocks + 1) {
            return items.length + " entries; expected 1 + " + blocks + " (BASE and one per block of this LoRA)"
                    + " or at least 12";
        }
        for (int i = 0; i < items.length; i++) {
            for (String t : items[i].strip().split(" ", -1)) {
                if (!inspireToken(t.strip())) {
                    return "entry " + (i + 1) + " \"" + items[i].strip() + "\" is not a number (-?D or -?D.D),"
                            + " A, a, B, b, R, r, U, u, or a space-separated list of those";
                }
            }
        }
        return null;
    }

    private static BlockWeights resolveInspire(String vector, List<String> blockModules, List<String> others,
                                               Options options) {
        String spec = vector.strip();
        if (spec.startsWith("%")) {
            spec = expandShorthand(spec, blockModules);
        }
        int blocks = countBlocks(blockModules);
        String[] items = body(spec).split(",", -1);
        String problem = inspireProblem(items, blocks);
        if (problem != null) {
            String preset = BlockPresets.get(items[0].strip());
            if (preset == null) {
                throw new InputException("block vector \"" + vector + "\": " + problem
                        + (items.length == 1 ? " (and not a preset name: " + String.join(", ", BlockPresets.names()) + ")" : ""));
            }
            items = preset.split(",");
        }
        NumpyRandom rng = new NumpyRandom(Math.floorMod(options.seed(), 1L << 31));
        Map<String, Double> ratios = new LinkedHashMap<>();
        List<String> populated = new ArrayList<>();
        List<Entry> entries = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        Deque<Double> pending = new ArrayDeque<>();
        double ratio = 1.0;
        int next = 1;
        Place last = null;
        String label = null;
        int count = 0;
        double first = 0;
        for (String m : blockModules) {
            Place p = placeOf(m);
            boolean newBlock = last == null || p.section() != last.section() || p.number() != last.number();
            // Inspire-Pack compares the block number only (last_k_unet_num != k_unet_num)
            boolean takesEntry = options.compat() ? last == null || p.number() != last.number() : newBlock;
            double applied;
            if (takesEntry && items.length > next) {
                pending = new ArrayDeque<>(inspireValues(items[next].strip(), options, rng));
                ratio = pending.removeFirst();
                applied = options.inverse() ? 1 - ratio : ratio;
                populated.add(inspireText(applied));
                next++;
            } else {
                if (!pending.isEmpty()) {
                    ratio = pending.removeFirst();
                }
                applied = options.inverse() ? 1 - ratio : ratio;
            }
            if (newBlock) {
                if (label != null) {
                    entries.add(new Entry(label, first, count));
                }
                label = p.label();
                count = 0;
                first = applied;
            }
            count++;
            last = p;
            ratios.put(m, applied);
        }
        if (label != null) {
            entries.add(new Entry(label, first, count));
        }
        if (items.length > next) {
            warnings.add("block vector has " + items.length + " entries but this LoRA uses " + next
                    + " (BASE + " + (next - 1) + " blocks); the rest are ignored");
        }
        List<Double> base = inspireValues(items[0].strip(), options, rng);
        double baseRatio = options.inverse() ? 1 - base.get(0) : base.get(0);
        populated.add(0, inspireText(baseRatio));
        entries.add(0, new Entry("BASE", baseRatio, others.size()));
        addOthers(ratios, others, baseRatio, warnings);
        return new BlockWeights(vector, Format.INSPIRE, ratios, String.join(",", populated), entries, warnings);
    }

    private static void addOthers(Map<String, Double> ratios, List<String> others, double baseRatio, List<String> warnings) {
        int unetOthers = 0;
        for (String m : others) {
            ratios.put(m, baseRatio);
            if (m.startsWith("lora_unet_") && !m.startsWith("lora_unet_time_embed") && !m.startsWith("lora_unet_label_emb")
                    && !m.startsWith("lora_unet_out_")) {
                unetOthers++;
            }
        }
        if (unetOthers > 0) {
            warnings.add(unetOthers + " UNet module(s) outside input_blocks/middle_block/output_blocks (diffusers"
                    + " names?) take the BASE ratio");
        }
    }

    /** Inspire's {@code str()} of a ratio: {@code 1} and {@code 0} as integers, other values as Python floats. */
    public static String text(double v) {
        return inspireText(v);
    }

    private static String inspireText(double v) {
        return v == 1 ? "1" : v == 0 ? "0" : PyFormat.repr(v);
    }

    /** The values of one entry (one per space-separated token), drawing R/U from {@code rng} in order. */
    private static List<Double> inspireValues(String entry, Options options, NumpyRandom rng) {
        List<Double> out = new ArrayList<>();
        for (String t : entry.split(" ", -1)) {
            out.add(switch (t.strip()) {
                case "U", "u" -> NumpyRandom.round(rng.uniform(-1.5, 1.5), 2);
                case "R", "r" -> NumpyRandom.round(rng.uniform(0, 3.0), 2);
                case "A" -> options.a();
                case "a" -> options.a() / 2;
                case "B" -> options.b();
                case "b" -> options.b() / 2;
                default -> Double.parseDouble(t.strip());
            });
        }
        return out;
    }

    private static final Pattern DSL_ALL = Pattern.compile("(default|base)=([0-9.]+)");
    private static final Pattern DSL_RANGE = Pattern.compile("(in|out|mid)([0-9]+)-([0-9]+)=([0-9.]+)");
    private static final Pattern DSL_ONE = Pattern.compile("(in|out|mid)([0-9]+)=([0-9.]+)");
    private static final Pattern DSL_SECTION = Pattern.compile("(in|out|mid)=([0-9.]+)");

    /**
     * Inspire-Pack's {@code %} shorthand: comma items {@code default=V}, {@code base=V}, {@code in=V},
     * {@code mid=V}, {@code out=V}, {@code inN=V}, {@code inN-M=V} (N, M are 1-based ordinals among the
     * blocks of that section present in the LoRA); expands to the plain vector
     * {@code base, inputs..., middles..., outputs...}. Later items override earlier ones; {@code default}
     * (1.0 unless given) fills everything not set, BASE included unless {@code base} is given.
     */
    static String expandShorthand(String spec, List<String> blockModules) {
        List<TreeSet<Integer>> present = List.of(new TreeSet<>(), new TreeSet<>(), new TreeSet<>());
        for (String m : blockModules) {
            Place p = placeOf(m);
            present.get(p.section()).add(p.number());
        }
        String[] items = spec.substring(1).split(",", -1);
        String base = null;
        String fill = "1.0";
        for (String raw : items) {
            Matcher m = DSL_ALL.matcher(raw.strip());
            if (m.matches()) {
                checkNumber(spec, m.group(2));
                if (m.group(1).equals("base")) {
                    base = m.group(2);
                } else {
                    fill = m.group(2);
                }
            }
        }
        List<List<String>> values = new ArrayList<>();
        for (TreeSet<Integer> s : present) {
            values.add(new ArrayList<>(Collections.nCopies(s.size(), fill)));
        }
        for (String raw : items) {
            String item = raw.strip();
            Matcher m;
            if (item.isEmpty() || DSL_ALL.matcher(item).matches()) {
                continue;
            }
            if ((m = DSL_RANGE.matcher(item)).matches()) {
                String v = PyFormat.repr(checkNumber(spec, m.group(4)));
                List<String> list = values.get(sectionOf(m.group(1)));
                for (long x = Long.parseLong(m.group(2)) - 1; x < Math.min(list.size(), Long.parseLong(m.group(3))); x++) {
                    if (x >= 0) {
                        list.set((int) x, v);
                    }
                }
            } else if ((m = DSL_ONE.matcher(item)).matches()) {
                String v = PyFormat.repr(checkNumber(spec, m.group(3)));
                List<String> list = values.get(sectionOf(m.group(1)));
                long x = Long.parseLong(m.group(2)) - 1;
                if (x >= 0 && x < list.size()) {
                    list.set((int) x, v);
                }
            } else if ((m = DSL_SECTION.matcher(item)).matches()) {
                String v = PyFormat.repr(checkNumber(spec, m.group(2)));
                List<String> list = values.get(sectionOf(m.group(1)));
                Collections.fill(list, v);
            } else {
                throw new InputException("block vector \"" + spec + "\": unknown item \"" + item + "\" (expected"
                        + " default=V, base=V, in=V, mid=V, out=V, inN=V or inN-M=V with V a non-negative number)");
            }
        }
        List<String> out = new ArrayList<>();
        out.add(base != null ? base : fill);
        values.forEach(out::addAll);
        return String.join(",", out);
    }

    private static int sectionOf(String dsl) {
        return dsl.equals("in") ? 0 : dsl.equals("mid") ? 1 : 2;
    }

    private static double checkNumber(String spec, String text) {
        Double v = PythonFloat.parseFinite(text);
        if (v == null) {
            throw new InputException("block vector \"" + spec + "\": \"" + text + "\" is not a number");
        }
        return v;
    }

    // ---------------------------------------------------------------- fixed slots (A1111 / kohya)

    /** The A1111 slot of a module: BASE, INnn, MID (= M00), OUTnn. */
    static String fixedSlot(String module) {
        Place p = placeOf(module);
        if (p != null) {
            return switch (p.section()) {
                case 0 -> String.format("IN%02d", p.number());
                case 1 -> "MID";
                default -> String.format("OUT%02d", p.number());
            };
        }
        if (module.startsWith("lora_unet_time_embed") || module.startsWith("lora_unet_label_emb")) {
            return "IN00";
        }
        if (module.startsWith("lora_unet_out_")) {
            return "OUT09";
        }
        return "BASE";
    }

    private static BlockWeights resolveFixed(String vector, List<String> blockModules, List<String> others,
                                             Options options) {
        String[] items = body(vector.strip()).split(",", -1);
        List<String> layout = items.length == 12 ? LBW12 : items.length == 20 ? LBW20 : null;
        if (layout == null) {
            throw new InputException("block vector \"" + vector + "\": the fixed-slot (A1111 lora-block-weight)"
                    + " format has 12 or 20 entries, found " + items.length);
        }
        NumpyRandom rng = new NumpyRandom(Math.floorMod(options.seed(), 1L << 31));
        Map<String, Double> slotValue = new LinkedHashMap<>();
        List<String> populated = new ArrayList<>();
        for (int i = 0; i < items.length; i++) {
            String t = items[i].strip();
            double v;
            if (t.equals("R")) {
                v = NumpyRandom.round(rng.nextDouble(), 3);
            } else if (t.equals("U")) {
                v = NumpyRandom.round(rng.uniform(-0.5, 1.5), 3);
            } else {
                Double d = PythonFloat.parseFinite(t);
                if (d == null) {
                    throw new InputException("block vector \"" + vector + "\": entry " + (i + 1) + " (" + layout.get(i)
                            + ") \"" + t + "\" is not a number, R or U");
                }
                v = d;
            }
            double applied = options.inverse() ? 1 - v : v;
            slotValue.put(layout.get(i), applied);
            populated.add(inspireText(applied));
        }
        double unlisted = options.inverse() ? 1 : 0;
        Map<String, Double> ratios = new LinkedHashMap<>();
        Map<String, Integer> counts = new LinkedHashMap<>();
        List<String> all = new ArrayList<>(blockModules);
        all.addAll(others);
        for (String m : all) {
            String slot = fixedSlot(m);
            ratios.put(m, slotValue.getOrDefault(slot, unlisted));
            counts.merge(slotValue.containsKey(slot) ? slot : slot + " (not in this layout)", 1, Integer::sum);
        }
        List<Entry> entries = new ArrayList<>();
        for (String slot : layout) {
            entries.add(new Entry(slot, slotValue.get(slot), counts.getOrDefault(slot, 0)));
        }
        List<String> warnings = new ArrayList<>();
        for (Map.Entry<String, Integer> e : counts.entrySet()) {
            if (e.getKey().endsWith("(not in this layout)")) {
                warnings.add(e.getValue() + " module(s) of slot " + e.getKey() + " get ratio " + inspireText(unlisted));
            }
        }
        return new BlockWeights(vector, Format.LBW, ratios, String.join(",", populated), entries, warnings);
    }

    // ---------------------------------------------------------------- module order inside a block

    private static final List<String> PARTS = List.of("in_layers", "emb_layers", "out_layers", "skip_connection",
            "norm", "proj_in", "transformer_blocks", "proj_out", "op", "conv");
    private static final List<String> TRANSFORMER_PARTS = List.of("attn1_to_q", "attn1_to_k", "attn1_to_v",
            "attn1_to_out", "ff_net_0", "ff_net_2", "attn2_to_q", "attn2_to_k", "attn2_to_v", "attn2_to_out",
            "norm1", "norm2", "norm3");
    private static final Pattern LAYER = Pattern.compile("(\\d{1,9})_(.*)");
    private static final Pattern TRANSFORMER = Pattern.compile("transformer_blocks_(\\d{1,9})_(.*)");

    /** Index of the first entry of {@code names} that {@code s} equals or starts with followed by {@code _}. */
    private static int rankOf(List<String> names, String s) {
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            if (s.equals(n) || s.startsWith(n + "_")) {
                return i;
            }
        }
        return names.size();
    }

    /**
     * UNet block modules in the order of the SDXL UNet's state dict (section, block number, layer in the
     * block, then ResBlock {@code in_layers, emb_layers, out_layers, skip_connection}, SpatialTransformer
     * {@code norm, proj_in, transformer_blocks.t (attn1 q/k/v/out, ff, attn2 q/k/v/out), proj_out},
     * {@code op}, {@code conv}): the order ComfyUI walks a LoRA's keys, which space-separated sub-values
     * follow.
     */
    static final Comparator<String> ARCHITECTURE_ORDER = (x, y) -> {
        Place a = placeOf(x);
        Place b = placeOf(y);
        int c = Integer.compare(a.section(), b.section());
        if (c == 0) {
            c = Integer.compare(a.number(), b.number());
        }
        return c != 0 ? c : compareRest(a.rest(), b.rest());
    };

    private static int compareRest(String x, String y) {
        // input/output blocks: "<layer>_<part>"; middle_block.N is itself one layer: "<part>"
        Matcher mx = LAYER.matcher(x);
        Matcher my = LAYER.matcher(y);
        long lx = mx.matches() ? Long.parseLong(mx.group(1)) : 0;
        long ly = my.matches() ? Long.parseLong(my.group(1)) : 0;
        int c = Long.compare(lx, ly);
        if (c != 0) {
            return c;
        }
        String px = mx.matches() ? mx.group(2) : x;
        String py = my.matches() ? my.group(2) : y;
        c = Integer.compare(rankOf(PARTS, px), rankOf(PARTS, py));
        if (c != 0) {
            return c;
        }
        Matcher tx = TRANSFORMER.matcher(px);
        Matcher ty = TRANSFORMER.matcher(py);
        if (tx.matches() && ty.matches()) {
            c = Long.compare(Long.parseLong(tx.group(1)), Long.parseLong(ty.group(1)));
            if (c == 0) {
                c = Integer.compare(rankOf(TRANSFORMER_PARTS, tx.group(2)), rankOf(TRANSFORMER_PARTS, ty.group(2)));
            }
            if (c != 0) {
                return c;
            }
        }
        return px.compareTo(py);
    }
}
